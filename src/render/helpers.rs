//! Handlebars helpers for dates and times in the reader's language.
//!
//! `{{date event.date "full"}}` writes an ISO date ("2017-10-02") as CLDR
//! does in the template's language ("lundi 2 octobre 2017"); the styles are
//! "full", "long", "weekday" and "short". `{{require x}}` fails the render
//! when `x` is missing or null, for the places where handlebars' `if`
//! would quietly skip a misspelt name (strict mode does not cover `if`).
//! `{{isolate x}}` writes `x` as a run of its own direction inside
//! right-to-left text (Arabic), so a Latin title's final full stop or an
//! address stays where it belongs: `<bdi>x</bdi>` in HTML, and in the text
//! part `x` between U+2068 FIRST STRONG ISOLATE and U+2069 POP DIRECTIONAL
//! ISOLATE.

use std::sync::Arc;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};

use crate::render::locale::{DateStyle, Localizer};

pub fn register(registry: &mut Handlebars<'static>, localizer: Arc<Localizer>, html: bool) {
    registry.register_helper(
        "date",
        Box::new(
            move |h: &Helper<'_>,
                  _: &Handlebars<'_>,
                  ctx: &Context,
                  _: &mut RenderContext<'_, '_>,
                  out: &mut dyn Output|
                  -> HelperResult {
                let value = h
                    .param(0)
                    .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("date", 0))?;
                let text = value
                    .value()
                    .as_str()
                    .ok_or_else(|| RenderErrorReason::InvalidParamType("an ISO date like \"2017-10-02\""))?;
                let style_name = h.param(1).and_then(|p| p.value().as_str()).unwrap_or("long");
                let style = DateStyle::from_name(style_name).ok_or_else(|| {
                    RenderErrorReason::Other(format!(
                        "unknown date style {style_name:?}: use full, long, weekday or short"
                    ))
                })?;
                let date: jiff::civil::Date = text
                    .get(..10)
                    .unwrap_or(text)
                    .parse()
                    .map_err(|_| RenderErrorReason::Other(format!("{text:?} is not a date")))?;
                let language = ctx.data().get("lang").and_then(|l| l.as_str()).unwrap_or("en");
                out.write(&localizer.date(date, language, style))?;
                Ok(())
            },
        ),
    );
    registry.register_helper("require", Box::new(Require));
    registry.register_helper("isolate", Box::new(Isolate { html }));
}

/// `{{isolate x}}`: `x` isolated from the text around it (see the module
/// doc); an error if `x` is missing, as `{{x}}` is in strict mode.
struct Isolate {
    html: bool,
}

impl HelperDef for Isolate {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let param = h
            .param(0)
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("isolate", 0))?;
        if param.is_value_missing() {
            let name = param.relative_path().cloned().unwrap_or_default();
            return Err(RenderErrorReason::MissingVariable(Some(name)).into());
        }
        let text = match param.value() {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if self.html {
            out.write("<bdi>")?;
            out.write(&handlebars::html_escape(&text))?;
            out.write("</bdi>")?;
        } else {
            out.write("\u{2068}")?;
            out.write(&text)?;
            out.write("\u{2069}")?;
        }
        Ok(())
    }
}

/// `{{require x}}`: the value of `x`, or an error if it is missing or null.
///
/// It returns the value rather than writing it, so handlebars writes it as
/// it writes `{{x}}`: escaped in an HTML template (and raw with
/// `{{{require x}}}`), which a helper writing to the output itself would
/// have to redo, and once did not.
struct Require;

impl HelperDef for Require {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let param = h
            .param(0)
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("require", 0))?;
        if param.is_value_missing() || param.value().is_null() {
            let name = param.relative_path().cloned().unwrap_or_default();
            return Err(RenderError::from(RenderErrorReason::Other(format!(
                "the required value {name:?} is missing"
            ))));
        }
        Ok(ScopedJson::Derived(param.value().clone()))
    }
}
