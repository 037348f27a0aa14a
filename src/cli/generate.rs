//! `herald generate man|completions DIR` (hidden): the manual pages and the
//! shell completions, written from the command-line definition, for the
//! Debian package (cargo-deb runs no generators; `scripts/build-package`
//! runs this first).
//!
//! `man1/herald.1` and a page per subcommand come from clap's definition of
//! the command line; `man5/herald.toml.5` is `doc/herald.toml.5`, carried in the
//! binary so that one command writes every page (a test checks it names
//! every key the configuration loader accepts).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Generated};

/// The manual page of the configuration file.
const CONFIG_PAGE: &str = include_str!("../../doc/herald.toml.5");

pub fn run(what: Generated, dir: &Path) -> super::CommandResult {
    let mut command = Cli::command();
    match what {
        Generated::Man => {
            let (section1, section5) = (dir.join("man1"), dir.join("man5"));
            create(&section1)?;
            create(&section5)?;
            clap_mangen::generate_to(command, &section1)
                .with_context(|| format!("cannot write the manual pages in {}", section1.display()))?;
            let page = section5.join("herald.toml.5");
            std::fs::write(&page, CONFIG_PAGE).with_context(|| format!("cannot write {}", page.display()))?;
        }
        Generated::Completions => {
            create(dir)?;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                clap_complete::generate_to(shell, &mut command, "herald", dir)
                    .with_context(|| format!("cannot write the {shell} completions in {}", dir.display()))?;
            }
        }
    }
    eprintln!("herald: wrote the {what} in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
