//! The commands, as runc names them: one file each, holding its flags (declared once, in its
//! `VERB`), its typed arguments and what it does. This module reads the global flags, finds the
//! command and reports what went wrong.

use ns_runtime::SetupError;

use crate::args::{self, parse, Flag, Parsed, UsageError};
use crate::global::{self, Ctx, Global};

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

/// A command of the command line.
pub struct Verb {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Its positional arguments, for the usage (`ID [SIGNAL]`).
    pub args: &'static str,
    pub about: &'static str,
    pub flags: &'static [Flag],
    /// Flags end at the first positional (`exec`: what follows the id is the command to run,
    /// flags and all); otherwise flags and positionals may mix.
    pub flags_end_at_positional: bool,
    pub main: fn(&Ctx, Parsed) -> Result<i32, Failure>,
}

/// Every command, in the order the usage lists them.
pub static VERBS: &[&Verb] = &[
    &create::VERB,
    &start::VERB,
    &state::VERB,
    &kill::VERB,
    &delete::VERB,
    &list::VERB,
    &ps::VERB,
    &pause::VERB,
    &resume::VERB,
    &update::VERB,
    &events::VERB,
    &run::VERB,
    &exec::VERB,
    &spec::VERB,
    &features::VERB,
];

/// Why a command failed: a command line that does not parse, or the work itself.
#[derive(Debug)]
pub enum Failure {
    Usage(UsageError),
    Setup(SetupError),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e)
    }
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        Failure::Setup(e)
    }
}

pub fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().copied().find(|v| v.name == name || v.aliases.contains(&name))
}

fn usage() -> String {
    let mut out =
        String::from("usage: ns-oci [global flags] COMMAND [flags] [ID …]\n\ncommands:\n");
    let width = VERBS.iter().map(|v| v.name.len() + 1 + v.args.len()).max().unwrap_or(0);
    for v in VERBS {
        let head =
            if v.args.is_empty() { v.name.to_owned() } else { format!("{} {}", v.name, v.args) };
        out.push_str(&format!("  {head:<width$}  {}\n", v.about));
    }
    out.push_str("\nglobal flags:\n");
    out.push_str(&args::describe(global::FLAGS));
    out.push_str("\n`ns-oci COMMAND --help` shows the flags of a command.");
    out
}

fn verb_usage(v: &Verb) -> String {
    let flags = if v.flags.is_empty() { "" } else { " [flags]" };
    let mut out = format!("usage: ns-oci {}{flags} {}\n\n{}\n", v.name, v.args, v.about);
    if !v.flags.is_empty() {
        out.push_str("\nflags:\n");
        out.push_str(&args::describe(v.flags));
    }
    out
}

/// The command's arguments: its flags, then its positionals.
pub fn parse_verb(v: &Verb, rest: &[String]) -> Result<Parsed, UsageError> {
    let (mut p, at) = parse(rest, v.flags, v.flags_end_at_positional)?;
    if v.flags_end_at_positional {
        p.positionals = rest[at..].to_vec();
    }
    Ok(p)
}

pub fn main(argv: &[String]) -> i32 {
    let global = parse(argv, global::FLAGS, true).and_then(|(p, at)| Ok((Global::from(&p)?, at)));
    let (global, at) = match global {
        Ok(x) => x,
        Err(e) => {
            err!("ns-oci: {e}\n`ns-oci --help` lists the global flags");
            return 1;
        }
    };
    if global.version {
        out!("ns-oci version {}", ns_runtime::VERSION);
        out!("commit: {}", option_env!("NS_COMMIT").unwrap_or("unknown"));
        out!("spec: {}", ns_runtime::SPEC_VERSION);
        return 0;
    }
    let ctx = global.context();
    let Some(name) = argv.get(at) else {
        if global.help {
            out!("{}", usage());
            return 0;
        }
        err!("{}", usage());
        return 1;
    };
    if name == "help" {
        out!("{}", usage());
        return 0;
    }
    let Some(verb) = find(name) else {
        ctx.report(
            &format!("unknown command {name:?}"),
            Some("`ns-oci --help` lists the commands"),
        );
        return 1;
    };
    let result = parse_verb(verb, &argv[at + 1..]).map_err(Failure::from).and_then(|p| {
        if p.switch(args::HELP.long) {
            out!("{}", verb_usage(verb));
            return Ok(0);
        }
        (verb.main)(&ctx, p)
    });
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            ctx.report(&e.0, Some(&format!("`ns-oci {} --help` shows its usage", verb.name)));
            1
        }
        Err(Failure::Setup(e)) => {
            ctx.error(&e);
            1
        }
    }
}

/// `p` made absolute against the working directory, as engines' relative paths mean.
pub fn absolute(p: &str) -> String {
    std::path::absolute(p).map(|p| p.display().to_string()).unwrap_or_else(|_| p.to_owned())
}

/// How `list` and `ps` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

pub const FORMAT: Flag =
    Flag::value("format", Some('f'), "table|json", "how to print (default: table)");

impl Format {
    pub fn from(p: &Parsed) -> Result<Format, UsageError> {
        Ok(match p.choice(FORMAT.long, &["table", "json"])? {
            Some("json") => Format::Json,
            _ => Format::Table,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A command's arguments as the command line gives them.
    pub fn parsed(v: &Verb, args: &[&str]) -> Result<Parsed, UsageError> {
        let args: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        parse_verb(v, &args)
    }

    #[test]
    fn every_command_is_found_by_its_name_and_flags_are_declared_once() {
        for v in VERBS {
            assert!(std::ptr::eq(find(v.name).unwrap(), *v));
            let mut names: Vec<&str> = v.flags.iter().map(|f| f.long).collect();
            let shorts: Vec<char> = v.flags.iter().filter_map(|f| f.short).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), v.flags.len(), "{}: a flag is declared twice", v.name);
            let mut s = shorts.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), shorts.len(), "{}: a short flag is declared twice", v.name);
            assert!(!names.contains(&"help") && !shorts.contains(&'h'), "{}: -h is --help", v.name);
            assert!(usage().contains(v.about));
            for f in v.flags {
                assert!(verb_usage(v).contains(&format!("--{}", f.long)));
            }
        }
        assert!(std::ptr::eq(find("ls").unwrap(), &list::VERB));
        assert!(find("unpause").is_none());
    }

    #[test]
    fn help_is_known_to_every_command() {
        for v in VERBS {
            assert!(parsed(v, &["--help"]).unwrap().switch("help"), "{}", v.name);
        }
    }
}
