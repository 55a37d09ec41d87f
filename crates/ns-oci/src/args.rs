//! A small parser for runc's command line: global flags, a command, its flags, positionals.
//! Flags take `--name value`, `--name=value` or `-n value`; booleans take no value.

use std::collections::BTreeMap;

/// The flags a command knows: long name, short name, whether it takes a value.
pub type FlagSpec = &'static [(&'static str, Option<char>, bool)];

#[derive(Debug, Default)]
pub struct Parsed {
    pub values: BTreeMap<&'static str, Vec<String>>,
    pub flags: Vec<&'static str>,
    pub positionals: Vec<String>,
}

impl Parsed {
    /// The last value given for a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }
    /// Every value given for a repeatable flag, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }
}

/// Parse `args` against `spec`. Parsing stops at the first positional when `stop_at_positional`
/// (global flags end where the command begins).
pub fn parse(
    args: &[String],
    spec: FlagSpec,
    stop_at_positional: bool,
) -> Result<(Parsed, usize), String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.positionals.extend(args[i + 1..].iter().cloned());
            return Ok((p, args.len()));
        }
        let found = if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            spec.iter().find(|(n, _, _)| *n == name).map(|f| (*f, inline))
        } else if a.len() == 2 && a.starts_with('-') && a != "-" {
            let c = a.chars().nth(1);
            spec.iter().find(|(_, s, _)| *s == c).map(|f| (*f, None))
        } else {
            None
        };
        match found {
            Some(((name, _, takes), inline)) => {
                if takes {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| format!("flag --{name} needs a value"))?
                        }
                    };
                    p.values.entry(name).or_default().push(v);
                } else {
                    p.flags.push(name);
                }
            }
            None if a.starts_with('-') && a.len() > 1 => return Err(format!("unknown flag {a}")),
            None => {
                if stop_at_positional {
                    return Ok((p, i));
                }
                p.positionals.push(a.clone());
            }
        }
        i += 1;
    }
    Ok((p, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: FlagSpec =
        &[("bundle", Some('b'), true), ("detach", Some('d'), false), ("pid-file", None, true)];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn long_short_and_inline_values() {
        let (p, _) =
            parse(&s(&["--bundle", "/b", "-d", "--pid-file=/p", "id"]), SPEC, false).unwrap();
        assert_eq!(p.value("bundle"), Some("/b"));
        assert_eq!(p.value("pid-file"), Some("/p"));
        assert!(p.has("detach"));
        assert_eq!(p.positionals, vec!["id"]);
        let (p, _) = parse(&s(&["-b", "x", "id", "KILL"]), SPEC, false).unwrap();
        assert_eq!(p.value("bundle"), Some("x"));
        assert_eq!(p.positionals, vec!["id", "KILL"]);
        let (p, _) = parse(&s(&["-b", "x", "--bundle=y"]), SPEC, false).unwrap();
        assert_eq!(p.all("bundle"), ["x", "y"]);
        assert_eq!(p.value("bundle"), Some("y"));
    }

    #[test]
    fn global_flags_stop_at_the_command() {
        let (p, at) = parse(&s(&["--bundle", "r", "create", "--detach"]), SPEC, true).unwrap();
        assert_eq!(p.value("bundle"), Some("r"));
        assert_eq!(at, 2);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        assert_eq!(parse(&s(&["--nope"]), SPEC, false).unwrap_err(), "unknown flag --nope");
        assert_eq!(
            parse(&s(&["--bundle"]), SPEC, false).unwrap_err(),
            "flag --bundle needs a value"
        );
    }
}
