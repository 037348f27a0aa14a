//! How deep one language's templates can go, checked before anything renders:
//! partials that include each other (directly or through others), and
//! blocks and partials nested deeper than rendering can afford.
//!
//! Handlebars renders a partial, a block and a subexpression by recursion
//! on the thread's stack, and has no depth limit of its own: two partials
//! that include each other, or a few hundred nested `{{#if}}`, overflow
//! the stack and abort the whole process (no panic to catch). So herald
//! refuses them at load, each with the file and line to fix:
//! - [`scan`] reads a template's text before handlebars compiles it, and
//!   refuses nesting deeper than [`MAX_DEPTH`] (a compiled template that
//!   deep could not even be dropped safely: `{{else if}}` chains nest too);
//! - [`check`] walks the compiled templates of a registry: every partial
//!   name must be written out (a computed name cannot be checked), no
//!   partial may include itself through others (the error names the cycle,
//!   `a → b → a`, with files), and no chain of inclusions may nest deeper
//!   than [`MAX_DEPTH`] in all.
//!
//! The graph over-approximates what can render: a name refers to the
//! registered partial and to every inline partial (`{{#*inline}}`) of that
//! name, wherever it is defined, since which one a render finds depends on
//! the caller. That can only refuse a contrived template, never let a
//! cycle through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use handlebars::template::{Parameter, Template, TemplateElement};

use crate::render::RenderError;

/// The deepest blocks, partials and subexpressions may nest inside each
/// other, counted through inclusions. herald's own templates nest a few
/// levels; an optimised build rendered 250 nested `{{#if}}` on a 1 MiB
/// stack and overflowed at 600, and the threads that check and render have
/// 2 MiB, so 32 leaves a wide margin even in a debug build (a test renders
/// at the limit).
pub const MAX_DEPTH: usize = 32;

/// Refuses a template whose text nests blocks (`{{#…}}`, `{{^…}}`, each
/// `{{else …}}` of a chain) or subexpressions deeper than [`MAX_DEPTH`],
/// before handlebars builds it. Counts conservatively: a tag in a raw block
/// counts too, which can only refuse, never miss, deep nesting.
pub fn scan(source: &str, file: &Path) -> Result<(), RenderError> {
    // One entry per open block: how many levels it holds (1, plus one per
    // chained `{{else if}}`, which handlebars nests inside the block).
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut rest = source;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let tag_start = offset + start;
        let after = &rest[start + 2..];
        // A comment's content is not parsed.
        let end = match after.strip_prefix("!--") {
            Some(comment) => comment.find("--}}").map(|e| 2 + 3 + e + 4),
            None => after.find("}}").map(|e| 2 + e + 2),
        };
        let Some(end) = end else { break };
        let tag = &rest[start..start + end];
        let inner = tag.trim_start_matches('{').trim_start_matches('~').trim_start();
        if !tag.starts_with("{{!") {
            let parens = deepest_parens(inner);
            if inner.starts_with('#')
                || (inner.starts_with('^')
                    && inner.len() > 1
                    && !inner[1..].trim_start().starts_with(['}', '~']))
            {
                open.push(1);
                depth += 1;
            } else if inner.starts_with('/') {
                depth -= open.pop().unwrap_or(0);
            } else if is_chained_else(inner)
                && let Some(levels) = open.last_mut()
            {
                *levels += 1;
                depth += 1;
            }
            if depth + parens > MAX_DEPTH {
                return Err(RenderError {
                    file: Some(file.to_owned()),
                    line: Some(line_of(source, tag_start)),
                    column: None,
                    message: format!(
                        "blocks nest more than {MAX_DEPTH} deep here; herald allows {MAX_DEPTH}, so that rendering cannot run out of stack"
                    ),
                });
            }
        }
        offset = tag_start + end;
        rest = &source[offset..];
    }
    Ok(())
}

/// `else if x`, `else each y`, `^ if x`: an else that opens a nested block.
fn is_chained_else(inner: &str) -> bool {
    let word = |rest: &str| {
        rest.starts_with(char::is_whitespace)
            && rest
                .trim_start()
                .starts_with(|c: char| c.is_alphanumeric() || c == '(')
    };
    inner.strip_prefix("else").is_some_and(word) || inner.strip_prefix('^').is_some_and(word)
}

/// The deepest parenthesis nesting in a tag (subexpressions).
fn deepest_parens(tag: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0;
    for c in tag.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset].matches('\n').count() + 1
}

/// A template or partial of the registry, or an inline partial.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    /// Registered under this name (`reminder.txt`, or a partial's `letterhead`).
    Registered(String),
    /// `{{#*inline "name"}}` inside the registered template `.0`.
    Inline(String, String),
}

impl Node {
    fn name(&self) -> &str {
        match self {
            Node::Registered(name) | Node::Inline(_, name) => name,
        }
    }
}

/// What one node includes: the partial names it writes, at which line and
/// at which depth of its own nesting, and how deep it nests by itself.
#[derive(Default)]
struct Includes {
    refs: Vec<Reference>,
    deepest: usize,
}

struct Reference {
    name: String,
    line: Option<usize>,
    depth: usize,
}

/// Checks the compiled templates of one registry: `templates` by their
/// registered name, `file_of` the file each came from.
pub fn check<'a>(
    templates: impl IntoIterator<Item = (&'a String, &'a Template)>,
    file_of: impl Fn(&str) -> Option<PathBuf>,
) -> Vec<RenderError> {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<Node, Includes> = BTreeMap::new();
    let mut templates: Vec<_> = templates.into_iter().collect();
    templates.sort_by(|a, b| a.0.cmp(b.0));
    for (name, template) in templates {
        let mut walk = Walk {
            owner: name,
            file: file_of(name),
            graph: &mut graph,
            problems: &mut problems,
        };
        let mut includes = Includes::default();
        walk.template(template, 0, &mut includes);
        graph.insert(Node::Registered(name.clone()), includes);
    }
    if !problems.is_empty() {
        return problems;
    }
    // Who a name may stand for: the registered template and every inline
    // partial of that name.
    let mut by_name: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for node in graph.keys() {
        by_name.entry(node.name()).or_default().push(node);
    }
    let targets = |name: &str| by_name.get(name).map(Vec::as_slice).unwrap_or_default();
    let place = |node: &Node| -> Option<PathBuf> {
        match node {
            Node::Registered(name) | Node::Inline(name, _) => file_of(name),
        }
    };
    let label = |node: &Node| match node {
        Node::Registered(name) => name.clone(),
        Node::Inline(owner, name) => format!("{name} (inline in {owner})"),
    };

    // Each node's edges: the node a reference may reach, at which depth.
    let edges: BTreeMap<&Node, Vec<(&Node, usize)>> = graph
        .iter()
        .map(|(node, includes)| {
            let out = includes
                .refs
                .iter()
                .flat_map(|r| targets(&r.name).iter().map(move |t| (*t, r.depth)))
                .collect();
            (node, out)
        })
        .collect();

    // Depth-first, iteratively (a long chain of partials must not exhaust
    // this stack either), finishing each node after everything it includes,
    // so its total depth is known from theirs.
    let mut depth: BTreeMap<&Node, usize> = BTreeMap::new();
    let mut on_path: BTreeSet<&Node> = BTreeSet::new();
    let mut reported_cycles = BTreeSet::new();
    for root in graph.keys() {
        if depth.contains_key(root) {
            continue;
        }
        // (node, index of its next edge to follow)
        let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
        on_path.insert(root);
        while let Some(&(node, next)) = stack.last() {
            if let Some(&(target, _)) = edges[node].get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                if on_path.contains(target) {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let cycle: Vec<&Node> = stack[from..].iter().map(|(n, _)| *n).collect();
                    if reported_cycles.insert(canonical(&cycle)) {
                        problems.push(cycle_error(&cycle, &graph, &label, &place));
                    }
                } else if !depth.contains_key(target) {
                    on_path.insert(target);
                    stack.push((target, 0));
                }
                continue;
            }
            // Every edge is followed: this node's depth is known (a node on
            // a cycle counts what is known, and the cycle is refused anyway).
            let through = edges[node]
                .iter()
                .map(|(target, at)| at + depth.get(target).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            depth.insert(node, graph[node].deepest.max(through));
            on_path.remove(node);
            stack.pop();
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    // Only where too deep begins: not each partial of a long chain too.
    let too_deep = |node: &&Node| depth.get(node).is_some_and(|d| *d > MAX_DEPTH);
    let inside_too_deep: BTreeSet<&Node> = edges
        .iter()
        .filter(|(node, _)| too_deep(node))
        .flat_map(|(_, out)| out.iter().map(|(target, _)| *target))
        .collect();
    for (node, total) in &depth {
        // An inline partial's depth counts in the template that includes it.
        if *total > MAX_DEPTH
            && !inside_too_deep.contains(node)
            && let Node::Registered(name) = node
        {
            problems.push(RenderError {
                file: place(node),
                line: None,
                column: None,
                message: format!(
                    "{name} nests blocks and partials {total} deep, through the partials it includes; herald allows {MAX_DEPTH}, so that rendering cannot run out of stack"
                ),
            });
        }
    }
    problems
}

/// A cycle's nodes, turned so the smallest comes first: the same cycle
/// found from another start is reported once.
fn canonical(cycle: &[&Node]) -> Vec<Node> {
    let start = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or(0, |(i, _)| i);
    cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .map(|n| (*n).clone())
        .collect()
}

fn cycle_error(
    cycle: &[&Node],
    graph: &BTreeMap<Node, Includes>,
    label: &impl Fn(&Node) -> String,
    place: &impl Fn(&Node) -> Option<PathBuf>,
) -> RenderError {
    let cycle = canonical(cycle);
    let mut names: Vec<String> = cycle.iter().map(label).collect();
    names.push(label(&cycle[0]));
    let mut steps = Vec::new();
    let mut first_line = None;
    for (i, node) in cycle.iter().enumerate() {
        let next = &cycle[(i + 1) % cycle.len()];
        let line = graph[node]
            .refs
            .iter()
            .find(|r| r.name == next.name())
            .and_then(|r| r.line);
        if i == 0 {
            first_line = line;
        }
        let file = place(node).map_or_else(|| label(node), |f| f.display().to_string());
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        steps.push(format!("{file}{at} includes {}", next.name()));
    }
    let what = if cycle.len() == 1 {
        "a partial includes itself"
    } else {
        "partials include each other"
    };
    RenderError {
        file: place(&cycle[0]),
        line: first_line,
        column: None,
        message: format!(
            "{what}: {} ({}); rendering would never end",
            names.join(" → "),
            steps.join(", ")
        ),
    }
}

/// Walks one registered template, collecting what it and its inline
/// partials include.
struct Walk<'g> {
    owner: &'g str,
    file: Option<PathBuf>,
    graph: &'g mut BTreeMap<Node, Includes>,
    problems: &'g mut Vec<RenderError>,
}

impl Walk<'_> {
    /// `level` is how deep `template` sits inside the node being walked.
    /// [`scan`] has bounded the nesting, so this recursion is shallow.
    fn template(&mut self, template: &Template, level: usize, into: &mut Includes) {
        into.deepest = into.deepest.max(level);
        for (i, element) in template.elements.iter().enumerate() {
            let line = template.mapping.get(i).map(|m| m.0);
            match element {
                TemplateElement::HelperBlock(helper) => {
                    for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                        self.template(inner, level + 1, into);
                    }
                }
                TemplateElement::PartialExpression(partial) | TemplateElement::PartialBlock(partial) => {
                    match partial_name(&partial.name) {
                        Some(name) if name == "@partial-block" => {}
                        Some(name) => into.refs.push(Reference {
                            name,
                            line,
                            depth: level + 1,
                        }),
                        None => self.problems.push(RenderError {
                            file: self.file.clone(),
                            line,
                            column: template.mapping.get(i).map(|m| m.1),
                            message: "a partial's name must be written out ({{> name}}), not computed: herald checks at load that partials do not include each other".to_owned(),
                        }),
                    }
                    if let Some(inner) = &partial.template {
                        self.template(inner, level + 1, into);
                    }
                }
                TemplateElement::DecoratorBlock(decorator) => {
                    let inline = decorator.name.as_name() == Some("inline");
                    let name = decorator.params.first().and_then(partial_name);
                    match (inline, name, &decorator.template) {
                        (true, Some(name), Some(body)) => {
                            let mut includes = Includes::default();
                            self.template(body, 0, &mut includes);
                            self.graph
                                .insert(Node::Inline(self.owner.to_owned(), name), includes);
                        }
                        (_, _, Some(body)) => self.template(body, level + 1, into),
                        _ => {}
                    }
                }
                // Text, values and decorator expressions include nothing; the
                // enum is non-exhaustive, and a kind of element handlebars
                // adds later would need a look here (a test renders every
                // kind of inclusion herald knows).
                _ => {}
            }
        }
    }
}

/// The name a partial is included by, if it is written out: `{{> name}}`,
/// `{{> path/name}}` or `{{> "name"}}`, as handlebars resolves it.
fn partial_name(parameter: &Parameter) -> Option<String> {
    match parameter {
        Parameter::Name(_) | Parameter::Path(_) => parameter.as_name().map(str::to_owned),
        Parameter::Literal(serde_json::Value::String(name)) => Some(name.clone()),
        // A subexpression, another literal, or a kind of parameter handlebars
        // adds later: a name computed while rendering.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(source: &str) -> bool {
        scan(source, Path::new("t.hbs")).is_ok()
    }

    #[test]
    fn the_scan_counts_blocks_chains_and_subexpressions_but_not_comments() {
        let nested = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
        assert!(depth_ok(&nested("{{#if a}}", "{{/if}}", MAX_DEPTH)));
        assert!(!depth_ok(&nested("{{#if a}}", "{{/if}}", MAX_DEPTH + 1)));
        assert!(!depth_ok(&nested("{{~#each a~}}", "{{~/each~}}", MAX_DEPTH + 1)));
        assert!(!depth_ok(&nested("{{^a}}", "{{/a}}", MAX_DEPTH + 1)));
        // Closed blocks do not add up.
        assert!(depth_ok(&"{{#if a}}x{{/if}}".repeat(1000)));
        // `{{else}}` and `{{^}}` alone open nothing; a chained else nests.
        assert!(depth_ok(&format!(
            "{{{{#if a}}}}{}{{{{/if}}}}",
            "{{else}}{{^}}".repeat(100)
        )));
        assert!(!depth_ok(&format!(
            "{{{{#if a}}}}{}{{{{/if}}}}",
            "{{else if b}}".repeat(MAX_DEPTH)
        )));
        assert!(!depth_ok(&format!(
            "{{{{x {}y{}}}}}",
            "(x ".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        )));
        assert!(depth_ok(&format!("{{{{!-- {} --}}}}", "{{#if a}}".repeat(100))));
        assert!(depth_ok(&format!("{{{{! {} }}}}", "(((".repeat(100))));
    }
}
