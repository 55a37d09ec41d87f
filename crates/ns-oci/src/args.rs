//! The grammar of runc's command line: global flags, a command, its flags and positionals.
//!
//! A flag with a value is `--name value`, `--name=value`, `-n value` or `-name value` (runc's
//! parser takes one dash or two, and so do engines that drive it); a switch takes no value, or
//! `=true` / `=false`. Every command declares its flags once, in a table of `Flag`s: the parser,
//! the usage text and the command's own typed arguments all read that table. An option no table
//! declares, a flag without its value, or a value of the wrong kind is a `UsageError` that names
//! it.

use std::fmt::Write as _;
use std::str::FromStr;

/// One flag of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// What its value is called in the usage (`DIR`); `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

impl Flag {
    /// A flag that takes no value.
    pub const fn switch(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
        Flag { long, short, value: None, help }
    }

    /// A flag followed by a value.
    pub const fn value(
        long: &'static str,
        short: Option<char>,
        value: &'static str,
        help: &'static str,
    ) -> Flag {
        Flag { long, short, value: Some(value), help }
    }
}

/// `-h`, `--help`: known to every command without being in its table.
pub const HELP: Flag = Flag::switch("help", Some('h'), "show this help");

/// A command line that does not parse: the message names the flag or argument at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a command line said, read back through the command's table.
#[derive(Debug, Default)]
pub struct Parsed {
    flags: &'static [Flag],
    values: Vec<(&'static str, String)>,
    switches: Vec<(&'static str, bool)>,
    pub positionals: Vec<String>,
}

impl Parsed {
    fn known(&self, name: &str) -> bool {
        name == HELP.long || self.flags.iter().any(|f| f.long == name)
    }

    /// The last value given for a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        debug_assert!(self.known(name), "flag --{name} is not in the command's table");
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Every value given for a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        debug_assert!(self.known(name), "flag --{name} is not in the command's table");
        self.values.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.clone()).collect()
    }

    /// Whether a switch is on (the last of `--x`, `--x=true`, `--x=false` decides).
    pub fn switch(&self, name: &str) -> bool {
        debug_assert!(self.known(name), "flag --{name} is not in the command's table");
        self.switches.iter().rev().find(|(n, _)| *n == name).is_some_and(|(_, on)| *on)
    }

    /// A flag's value read as a number (or anything `FromStr`), if it was given.
    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, UsageError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                UsageError::new(format!("--{name}: {v:?} is not a number (a whole number ≥ 0)"))
            }),
        }
    }

    /// A flag whose value must be one of `choices`.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, UsageError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => choices.iter().find(|c| **c == v).copied().map(Some).ok_or_else(|| {
                UsageError::new(format!("--{name}: {v:?} is not one of {}", choices.join(", ")))
            }),
        }
    }

    /// The one positional argument a command takes: a container id.
    pub fn id(&self, verb: &str) -> Result<String, UsageError> {
        match self.positionals.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(UsageError::new(format!("{verb} needs a container id"))),
            more => Err(extra(verb, "one container id", more)),
        }
    }

    /// No positional argument at all.
    pub fn none(&self, verb: &str) -> Result<(), UsageError> {
        match self.positionals.as_slice() {
            [] => Ok(()),
            more => Err(extra(verb, "no arguments", more)),
        }
    }
}

fn extra(verb: &str, takes: &str, got: &[String]) -> UsageError {
    UsageError::new(format!("{verb} takes {takes}, not {:?}", got.join(" ")))
}

/// Parse `args` against `flags`. With `stop_at_positional`, parsing ends at the first positional
/// (where global flags end and the command begins; where `exec`'s flags end and the command it
/// runs begins) and its index is returned; otherwise flags and positionals may mix, and `--`
/// makes everything after it positional.
pub fn parse(
    args: &[String],
    flags: &'static [Flag],
    stop_at_positional: bool,
) -> Result<(Parsed, usize), UsageError> {
    let mut p = Parsed { flags, ..Parsed::default() };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            if stop_at_positional {
                return Ok((p, i + 1));
            }
            p.positionals.extend(args[i + 1..].iter().cloned());
            return Ok((p, args.len()));
        }
        if a.len() < 2 || !a.starts_with('-') {
            if stop_at_positional {
                return Ok((p, i));
            }
            p.positionals.push(a.clone());
            i += 1;
            continue;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let single_dash = !a.starts_with("--");
        let flag = flags.iter().chain(std::iter::once(&HELP)).find(|f| {
            f.long == name
                || (single_dash && name.chars().count() == 1 && f.short == name.chars().next())
        });
        let Some(flag) = flag else {
            return Err(UsageError::new(format!(
                "unknown flag {}",
                a.split('=').next().unwrap_or(a)
            )));
        };
        match flag.value {
            Some(_) => {
                let v = match inline {
                    Some(v) => v.to_owned(),
                    None => {
                        i += 1;
                        args.get(i).cloned().ok_or_else(|| {
                            UsageError::new(format!("flag --{} needs a value", flag.long))
                        })?
                    }
                };
                p.values.push((flag.long, v));
            }
            None => {
                let on = match inline {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(v) => {
                        return Err(UsageError::new(format!(
                            "flag --{} takes no value (or true, false), not {v:?}",
                            flag.long
                        )))
                    }
                };
                p.switches.push((flag.long, on));
            }
        }
        i += 1;
    }
    Ok((p, i))
}

/// The flags of a table, one a line, for a usage text.
pub fn describe(flags: &[Flag]) -> String {
    let name = |f: &Flag| {
        let short = f.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = f.value.map(|v| format!(" {v}")).unwrap_or_default();
        format!("{short}--{}{value}", f.long)
    };
    let width = flags.iter().map(|f| name(f).chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for f in flags {
        let _ = writeln!(out, "  {:<width$}  {}", name(f), f.help);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag::value("bundle", Some('b'), "DIR", ""),
        Flag::switch("detach", Some('d'), ""),
        Flag::value("pid-file", None, "FILE", ""),
        Flag::value("env", Some('e'), "K=V", ""),
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn ok(v: &[&str]) -> Parsed {
        parse(&s(v), FLAGS, false).unwrap().0
    }

    fn err(v: &[&str]) -> String {
        parse(&s(v), FLAGS, false).unwrap_err().0
    }

    #[test]
    fn long_short_single_dash_and_inline_values() {
        let p = ok(&["--bundle", "/b", "-d", "--pid-file=/p", "id"]);
        assert_eq!(p.value("bundle"), Some("/b"));
        assert_eq!(p.value("pid-file"), Some("/p"));
        assert!(p.switch("detach"));
        assert_eq!(p.positionals, ["id"]);
        let p = ok(&["-b", "x", "id", "KILL"]);
        assert_eq!(p.value("bundle"), Some("x"));
        assert_eq!(p.positionals, ["id", "KILL"]);
        let p = ok(&["-bundle", "x", "-pid-file=y"]);
        assert_eq!((p.value("bundle"), p.value("pid-file")), (Some("x"), Some("y")));
        let p = ok(&["-b", "x", "--bundle=y", "-e", "A=1", "--env=B=2"]);
        assert_eq!(p.value("bundle"), Some("y"));
        assert_eq!(p.all("env"), ["A=1", "B=2"]);
    }

    #[test]
    fn switches_take_true_or_false_and_nothing_else() {
        assert!(!ok(&[]).switch("detach"));
        assert!(ok(&["--detach=true"]).switch("detach"));
        assert!(!ok(&["-d", "--detach=false"]).switch("detach"));
        assert_eq!(
            err(&["--detach=yes"]),
            "flag --detach takes no value (or true, false), not \"yes\""
        );
    }

    #[test]
    fn global_flags_stop_at_the_command() {
        let (p, at) = parse(&s(&["--bundle", "r", "create", "--detach"]), FLAGS, true).unwrap();
        assert_eq!(p.value("bundle"), Some("r"));
        assert_eq!(at, 2);
        let (_, at) = parse(&s(&["-d", "--", "-x"]), FLAGS, true).unwrap();
        assert_eq!(at, 2);
        assert_eq!(ok(&["a", "--", "-d", "b"]).positionals, ["a", "-d", "b"]);
    }

    #[test]
    fn unknown_flags_missing_values_and_bad_values_are_errors_naming_them() {
        assert_eq!(err(&["--nope"]), "unknown flag --nope");
        assert_eq!(err(&["--nope=1"]), "unknown flag --nope");
        assert_eq!(err(&["-x"]), "unknown flag -x");
        assert_eq!(err(&["id", "-bd"]), "unknown flag -bd");
        assert_eq!(err(&["--bundle"]), "flag --bundle needs a value");
        let p = ok(&["--pid-file", "x"]);
        assert_eq!(
            p.number::<u32>("pid-file").unwrap_err().0,
            "--pid-file: \"x\" is not a number (a whole number ≥ 0)"
        );
        let p = ok(&["--bundle", "xml"]);
        assert_eq!(
            p.choice("bundle", &["text", "json"]).unwrap_err().0,
            "--bundle: \"xml\" is not one of text, json"
        );
        assert_eq!(ok(&["--bundle", "json"]).choice("bundle", &["text", "json"]), Ok(Some("json")));
    }

    #[test]
    fn positionals_are_counted() {
        assert_eq!(ok(&["a"]).id("start"), Ok("a".into()));
        assert_eq!(ok(&[]).id("start").unwrap_err().0, "start needs a container id");
        assert_eq!(
            ok(&["a", "b"]).id("start").unwrap_err().0,
            "start takes one container id, not \"a b\""
        );
        assert_eq!(ok(&["x"]).none("list").unwrap_err().0, "list takes no arguments, not \"x\"");
        assert!(ok(&["-h"]).switch("help"));
    }

    #[test]
    fn the_usage_lists_every_flag_of_the_table() {
        let u = describe(FLAGS);
        assert_eq!(u.lines().count(), FLAGS.len());
        assert!(u.contains("-b, --bundle DIR"));
        assert!(u.contains("    --pid-file FILE") || u.contains("--pid-file FILE"));
    }
}
