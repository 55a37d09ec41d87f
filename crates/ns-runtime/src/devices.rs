//! Devices: the nodes `linux.devices` puts in the container, and the allow/deny rules of
//! `linux.resources.devices` the device controller enforces.
//!
//! The rules are read as the cgroup v1 device controller reads them, in order: a rule on every
//! device (type `a`) resets the list to allow-all or deny-all, any other adds an exception (an
//! allowed device on a deny-all list, a denied one on an allow-all list) or takes access away
//! from one. runc's defaults (mknod of anything; null, zero, full, random, urandom, tty, the
//! pty masters and slaves, tun) are appended to the spec's rules, as runc appends them. The
//! outcome (`DeviceState`) is written to v1's `devices.deny`/`devices.allow`, or compiled into
//! a `BPF_CGROUP_DEVICE` program for cgroup v2 (`program`), which decides as v1 would: on a
//! deny-all list an access is allowed when one exception has all its bits; on an allow-all
//! list it is denied when one exception has any of them.

use crate::bpf::{self, Insn};
use crate::error::{Result, SetupError};

/// Access bits, as both v1 (`rwm`) and the BPF context (`BPF_DEVCG_ACC_*`) number them.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL: u8 = MKNOD | READ | WRITE;

/// A device's kind, as the rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Block,
    Char,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Block => 'b',
            Kind::Char => 'c',
        }
    }

    /// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
    fn bpf(self) -> i32 {
        match self {
            Kind::Block => 1,
            Kind::Char => 2,
        }
    }
}

/// `linux.resources.devices[i]` as the spec writes it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpecRule {
    pub allow: bool,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub access: Option<String>,
}

/// `linux.devices[i]`: a node to make in the container.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecDevice {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub file_mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

/// One rule, checked: `kind` None is every device (type `a`); a number None is `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Option<Kind>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule { allow: true, kind: Some(Kind::Char), major, minor, access }
    }
}

/// runc's defaults, appended to every list of rules, with the path of the node each is for
/// (a node `linux.devices` also names takes the place of its default rule).
pub const DEFAULT_RULES: [(Option<&str>, Rule); 11] = [
    (None, Rule::allow_char(None, None, MKNOD)),
    (None, Rule { allow: true, kind: Some(Kind::Block), major: None, minor: None, access: MKNOD }),
    (Some("/dev/null"), Rule::allow_char(Some(1), Some(3), ALL)),
    (Some("/dev/random"), Rule::allow_char(Some(1), Some(8), ALL)),
    (Some("/dev/full"), Rule::allow_char(Some(1), Some(7), ALL)),
    (Some("/dev/tty"), Rule::allow_char(Some(5), Some(0), ALL)),
    (Some("/dev/zero"), Rule::allow_char(Some(1), Some(5), ALL)),
    (Some("/dev/urandom"), Rule::allow_char(Some(1), Some(9), ALL)),
    // The pty slaves (/dev/pts/*) and their master multiplexer (/dev/ptmx).
    (None, Rule::allow_char(Some(136), None, ALL)),
    (None, Rule::allow_char(Some(5), Some(2), ALL)),
    // tun (/dev/net/tun), which runc keeps for compatibility.
    (None, Rule::allow_char(Some(10), Some(200), ALL)),
];

fn parse_access(field: &str, a: Option<&str>) -> Result<u8> {
    let Some(a) = a else { return Ok(ALL) };
    let mut bits = 0;
    for c in a.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => {
                return Err(SetupError::config(
                    field,
                    format!("{a:?} is not an access (a combination of r, w and m)"),
                ))
            }
        };
    }
    if bits == 0 {
        return Err(SetupError::config(field, "must not be empty (r, w, m or a combination)"));
    }
    Ok(bits)
}

fn number(field: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => {
            Err(SetupError::config(field, format!("{n} is not a device number (or -1 for all)")))
        }
    }
}

/// The spec's rules, checked, each named `linux.resources.devices[i]` in errors.
pub fn parse_rules(rules: &[SpecRule]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let f = |k: &str| format!("linux.resources.devices[{i}].{k}");
            let kind = match r.kind.as_deref() {
                None | Some("a") | Some("") => None,
                Some("b") => Some(Kind::Block),
                Some("c") => Some(Kind::Char),
                Some(other) => {
                    return Err(SetupError::config(
                        f("type"),
                        format!("{other:?} is not a device type (a, b or c)"),
                    ))
                }
            };
            Ok(Rule {
                allow: r.allow,
                kind,
                major: number(&f("major"), r.major)?,
                minor: number(&f("minor"), r.minor)?,
                access: parse_access(&f("access"), r.access.as_deref())?,
            })
        })
        .collect()
}

/// The spec's rules with runc's defaults appended (but those for a path of `nodes`, the
/// paths `linux.devices` makes nodes at).
pub fn effective_rules(spec: &[SpecRule], nodes: &[String]) -> Result<Vec<Rule>> {
    let mut rules = parse_rules(spec)?;
    for (path, rule) in DEFAULT_RULES {
        if path.is_some_and(|p| nodes.iter().any(|n| n == p)) {
            continue;
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// An exception of the list: a device (or `*` of them) and the access bits it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// What the rules come to: allow-all or deny-all, and the exceptions to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl DeviceState {
    /// The rules applied in order, from a list that denies everything (as runc starts: rules
    /// that only allow make an allow-list); errors name the rule.
    pub fn from_rules(rules: &[Rule]) -> Result<DeviceState> {
        let mut s = DeviceState { default_allow: false, exceptions: Vec::new() };
        for (i, r) in rules.iter().enumerate() {
            let Some(kind) = r.kind else {
                s = DeviceState { default_allow: r.allow, exceptions: Vec::new() };
                continue;
            };
            let key = |e: &Exception| e.kind == kind && e.major == r.major && e.minor == r.minor;
            if r.allow != s.default_allow {
                // An exception grows.
                match s.exceptions.iter_mut().find(|e| key(e)) {
                    Some(e) => e.access |= r.access,
                    None => s.exceptions.push(Exception {
                        kind,
                        major: r.major,
                        minor: r.minor,
                        access: r.access,
                    }),
                }
            } else {
                // An exception shrinks. v1 cannot punch a hole in a wildcard exception.
                let wider = s.exceptions.iter().find(|e| {
                    e.kind == kind
                        && !key(e)
                        && (e.major.is_none() || e.major == r.major)
                        && (e.minor.is_none() || e.minor == r.minor)
                        && e.access & r.access != 0
                });
                if let Some(w) = wider {
                    return Err(SetupError::config(
                        format!("linux.resources.devices[{i}]"),
                        format!(
                            "cannot take {} from {}, which {} allows by a wider rule ({}): the device controller has no holes in those",
                            access_text(r.access),
                            spell(kind, r.major, r.minor),
                            if s.default_allow { "denies" } else { "allows" },
                            spell(w.kind, w.major, w.minor),
                        ),
                    ));
                }
                if let Some(e) = s.exceptions.iter_mut().find(|e| key(e)) {
                    e.access &= !r.access;
                }
                s.exceptions.retain(|e| e.access != 0);
            }
        }
        Ok(s)
    }

    /// May `access` be made of the device (as the v1 controller and the program decide)?
    pub fn permits(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let covers = |e: &&Exception| {
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            !self.exceptions.iter().filter(covers).any(|e| e.access & access != 0)
        } else {
            self.exceptions.iter().filter(covers).any(|e| access & !e.access == 0)
        }
    }

    /// The lines for a v1 cgroup: reset to the default, then each exception.
    pub fn v1_writes(&self) -> Vec<(&'static str, String)> {
        let (reset, each) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        let mut out = vec![(reset, "a".to_owned())];
        for e in &self.exceptions {
            out.push((
                each,
                format!("{} {}", spell(e.kind, e.major, e.minor), access_text(e.access)),
            ));
        }
        out
    }

    /// The cgroup v2 program that decides as the v1 controller would. Its context
    /// (`struct bpf_cgroup_dev_ctx`) holds `access_type` (access << 16 | type), `major`,
    /// `minor`; it returns 1 to allow, 0 to deny.
    pub fn program(&self) -> Vec<Insn> {
        use bpf::*;
        let mut p = vec![
            ldx_w(R2, R1, 0),
            mov32_reg(R3, R2),
            and32_imm(R3, 0xffff), // r3: the type
            rsh32_imm(R2, 16),     // r2: the access bits
            ldx_w(R4, R1, 4),      // r4: major
            ldx_w(R5, R1, 8),      // r5: minor
        ];
        let verdict = if self.default_allow { 0 } else { 1 };
        for e in &self.exceptions {
            // A block of tests, each jumping past the block when it fails, then the verdict.
            let mut tests: Vec<Vec<Insn>> = vec![vec![jne_imm(R3, e.kind.bpf(), 0)]];
            if self.default_allow {
                // Denied when any asked-for bit is the exception's.
                tests.push(vec![
                    mov32_reg(R6, R2),
                    and32_imm(R6, e.access as i32),
                    jeq_imm(R6, 0, 0),
                ]);
            } else if e.access != ALL {
                // Allowed only when every asked-for bit is the exception's.
                tests.push(vec![
                    mov32_reg(R6, R2),
                    and32_imm(R6, !(e.access as i32) & 7),
                    jne_imm(R6, 0, 0),
                ]);
            }
            if let Some(m) = e.major {
                tests.push(vec![jne_imm(R4, m as i32, 0)]);
            }
            if let Some(m) = e.minor {
                tests.push(vec![jne_imm(R5, m as i32, 0)]);
            }
            let len: usize = tests.iter().map(Vec::len).sum::<usize>() + 2;
            let mut at = 0;
            for t in tests {
                let n = t.len();
                for (k, mut insn) in t.into_iter().enumerate() {
                    at += 1;
                    if k + 1 == n {
                        // The jump: past what is left of the block.
                        insn.off = (len - at) as i16;
                    }
                    p.push(insn);
                }
            }
            p.push(mov64_imm(R0, verdict));
            p.push(exit());
        }
        p.push(mov64_imm(R0, 1 - verdict));
        p.push(exit());
        p
    }
}

fn spell(kind: Kind, major: Option<u32>, minor: Option<u32>) -> String {
    let n = |v: Option<u32>| v.map_or("*".to_owned(), |v| v.to_string());
    format!("{} {}:{}", kind.letter(), n(major), n(minor))
}

fn access_text(a: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(b, _)| a & b != 0)
        .map(|(_, c)| c)
        .collect()
}

/// A node `linux.devices` asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Absolute and clean, inside the container.
    pub path: String,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub file_type: libc::mode_t,
    pub major: u32,
    pub minor: u32,
    /// The permission bits (and setuid, setgid, sticky).
    pub mode: libc::mode_t,
    pub uid: u32,
    pub gid: u32,
}

impl Node {
    pub fn rdev(&self) -> libc::dev_t {
        libc::makedev(self.major, self.minor)
    }
}

/// The nodes of `linux.devices`, checked, each named `linux.devices[i]` in errors.
pub fn plan_nodes(devices: &[SpecDevice]) -> Result<Vec<Node>> {
    let mut out: Vec<Node> = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let f = |k: &str| format!("linux.devices[{i}].{k}");
        // Absolute and clean (no `.`, `..` or doubled slashes).
        if !d.path.starts_with('/') || d.path.split('/').any(|c| c == "..") {
            return Err(SetupError::config(f("path"), "must be an absolute path without '..'"));
        }
        let parts: Vec<&str> = d.path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        let path = format!("/{}", parts.join("/"));
        if path == "/" || path == "/dev" || path == "/proc" || path.starts_with("/proc/") {
            return Err(SetupError::config(f("path"), format!("{path} cannot be a device node")));
        }
        let file_type = match d.kind.as_str() {
            "c" | "u" => libc::S_IFCHR,
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            other => {
                return Err(SetupError::config(
                    f("type"),
                    format!("{other:?} is not a device type (c, b, u or p)"),
                ))
            }
        };
        let num = |k: &str, v: Option<i64>, max: i64| -> Result<u32> {
            match v {
                Some(v) if (0..=max).contains(&v) => Ok(v as u32),
                Some(v) => {
                    Err(SetupError::config(f(k), format!("{v} is out of range (0 to {max})")))
                }
                None if file_type == libc::S_IFIFO => Ok(0),
                None => {
                    Err(SetupError::config(f(k), "is required for a device that is not a fifo"))
                }
            }
        };
        let major = num("major", d.major, 0xfff)?;
        let minor = num("minor", d.minor, 0xf_ffff)?;
        let mode = d.file_mode.unwrap_or(0o666);
        if mode & !0o7777 & !(libc::S_IFMT) != 0 {
            return Err(SetupError::config(f("fileMode"), format!("{mode:o} is not a file mode")));
        }
        if out.iter().any(|n| n.path == path) {
            return Err(SetupError::config(f("path"), format!("{path} is listed twice")));
        }
        out.push(Node {
            path,
            file_type,
            major,
            minor,
            mode: mode & 0o7777,
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: Option<&str>, major: i64, minor: i64, access: &str) -> SpecRule {
        SpecRule {
            allow,
            kind: kind.map(Into::into),
            major: Some(major),
            minor: Some(minor),
            access: Some(access.into()),
        }
    }

    /// The engines' usual list: deny everything, then runc's defaults.
    fn engine_state(extra: &[SpecRule]) -> DeviceState {
        let mut spec =
            vec![SpecRule { allow: false, access: Some("rwm".into()), ..Default::default() }];
        spec.extend_from_slice(extra);
        DeviceState::from_rules(&effective_rules(&spec, &[]).unwrap()).unwrap()
    }

    #[test]
    fn deny_all_then_runc_s_defaults_allows_the_usual_devices_and_nothing_else() {
        let s = engine_state(&[]);
        assert!(!s.default_allow);
        assert!(s.permits(Kind::Char, 1, 3, READ | WRITE), "/dev/null");
        assert!(s.permits(Kind::Char, 136, 7, READ | WRITE), "a pty");
        assert!(s.permits(Kind::Block, 8, 0, MKNOD), "mknod of anything");
        assert!(!s.permits(Kind::Block, 8, 0, READ), "a disk");
        assert!(!s.permits(Kind::Char, 1, 1, READ), "/dev/mem");
        assert_eq!(s.v1_writes()[0], ("devices.deny", "a".to_owned()));
        assert!(s.v1_writes().contains(&("devices.allow", "c 136:* rwm".to_owned())));
        assert!(s.v1_writes().contains(&("devices.allow", "c *:* m".to_owned())));
    }

    #[test]
    fn rules_apply_in_order_as_v1_applies_them() {
        // An allow-list that allows /dev/fuse read-write, then takes the write away.
        let s = engine_state(&[
            rule(true, Some("c"), 10, 229, "rw"),
            rule(false, Some("c"), 10, 229, "w"),
        ]);
        assert!(s.permits(Kind::Char, 10, 229, READ));
        assert!(!s.permits(Kind::Char, 10, 229, READ | WRITE));
        // Allow everything, then deny one device: an allow-all list with an exception.
        let spec =
            [SpecRule { allow: true, ..Default::default() }, rule(false, Some("c"), 1, 5, "r")];
        let s = DeviceState::from_rules(&parse_rules(&spec).unwrap()).unwrap();
        assert!(s.default_allow);
        assert!(!s.permits(Kind::Char, 1, 5, READ | WRITE), "any asked-for bit denied");
        assert!(s.permits(Kind::Char, 1, 5, WRITE));
        assert_eq!(
            s.v1_writes(),
            [("devices.allow", "a".to_owned()), ("devices.deny", "c 1:5 r".to_owned())]
        );
    }

    #[test]
    fn a_hole_in_a_wildcard_and_bad_rules_are_refused_naming_the_rule() {
        let e = DeviceState::from_rules(
            &parse_rules(&[
                SpecRule { allow: false, ..Default::default() },
                rule(true, Some("c"), 1, -1, "rw"),
                rule(false, Some("c"), 1, 3, "r"),
            ])
            .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("linux.resources.devices[2]"));
        let bad = |r: SpecRule| parse_rules(&[r]).unwrap_err().path.unwrap();
        assert_eq!(bad(rule(true, Some("x"), 1, 3, "r")), "linux.resources.devices[0].type");
        assert_eq!(bad(rule(true, Some("c"), -5, 3, "r")), "linux.resources.devices[0].major");
        assert_eq!(bad(rule(true, Some("c"), 1, 3, "rx")), "linux.resources.devices[0].access");
    }

    #[test]
    fn a_node_linux_devices_makes_takes_the_place_of_its_default_rule() {
        let nodes = plan_nodes(&[SpecDevice {
            kind: "c".into(),
            path: "/dev/null".into(),
            major: Some(1),
            minor: Some(3),
            ..Default::default()
        }])
        .unwrap();
        let paths: Vec<String> = nodes.iter().map(|n| n.path.clone()).collect();
        let rules = effective_rules(&[], &paths).unwrap();
        assert_eq!(rules.len(), DEFAULT_RULES.len() - 1);
        assert!(!rules.contains(&DEFAULT_RULES[2].1));
    }

    #[test]
    fn nodes_are_checked_and_named() {
        let dev = |kind: &str, path: &str, major: Option<i64>| SpecDevice {
            kind: kind.into(),
            path: path.into(),
            major,
            minor: Some(1),
            file_mode: Some(0o620),
            uid: Some(5),
            gid: None,
        };
        let n =
            plan_nodes(&[dev("c", "/dev/fuse/", Some(10)), dev("p", "/dev/fifo", None)]).unwrap();
        assert_eq!(
            n[0],
            Node {
                path: "/dev/fuse".into(),
                file_type: libc::S_IFCHR,
                major: 10,
                minor: 1,
                mode: 0o620,
                uid: 5,
                gid: 0
            }
        );
        assert_eq!(n[1].file_type, libc::S_IFIFO);
        let bad = |d: SpecDevice| plan_nodes(&[d]).unwrap_err().path.unwrap();
        assert_eq!(bad(dev("x", "/dev/a", Some(1))), "linux.devices[0].type");
        assert_eq!(bad(dev("c", "dev/a", Some(1))), "linux.devices[0].path");
        assert_eq!(bad(dev("c", "/proc/a", Some(1))), "linux.devices[0].path");
        assert_eq!(bad(dev("c", "/dev/a", None)), "linux.devices[0].major");
        assert_eq!(bad(dev("b", "/dev/a", Some(4096))), "linux.devices[0].major");
    }

    /// Run the program as the kernel would, for one access (an interpreter of the few
    /// instructions it is made of).
    fn run(p: &[Insn], kind: Kind, major: u32, minor: u32, access: u8) -> i64 {
        let ctx = [(u32::from(access) << 16) | kind.bpf() as u32, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                0x61 => r[dst] = i64::from(ctx[(i64::from(i.off) / 4) as usize]),
                0xbc => r[dst] = r[src] & 0xffff_ffff,
                0x54 => r[dst] = (r[dst] & i64::from(i.imm)) & 0xffff_ffff,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as i64,
                0xb7 => r[dst] = i64::from(i.imm),
                0x55 => jump(r[dst] != i64::from(i.imm), &mut pc),
                0x15 => jump(r[dst] == i64::from(i.imm), &mut pc),
                0x95 => return r[0],
                c => panic!("instruction {c:#x} not expected"),
            }
        }
    }

    #[test]
    fn the_program_decides_as_the_rules_do_for_every_device_and_access() {
        let states = [
            engine_state(&[]),
            engine_state(&[
                rule(true, Some("c"), 10, 229, "rw"),
                rule(false, Some("c"), 10, 229, "w"),
            ]),
            engine_state(&[rule(true, Some("b"), 8, -1, "r")]),
            DeviceState::from_rules(
                &parse_rules(&[
                    SpecRule { allow: true, ..Default::default() },
                    rule(false, Some("c"), 1, 5, "rw"),
                    rule(false, Some("b"), -1, -1, "m"),
                ])
                .unwrap(),
            )
            .unwrap(),
            DeviceState { default_allow: true, exceptions: vec![] },
            DeviceState { default_allow: false, exceptions: vec![] },
        ];
        for s in &states {
            let p = s.program();
            assert!(p.len() < 4096, "within the verifier's limit");
            for kind in [Kind::Block, Kind::Char] {
                for (major, minor) in [
                    (1, 3),
                    (1, 5),
                    (1, 9),
                    (5, 2),
                    (8, 0),
                    (8, 16),
                    (10, 229),
                    (10, 200),
                    (136, 4),
                    (4095, 1),
                ] {
                    for access in 1..=ALL {
                        assert_eq!(
                            run(&p, kind, major, minor, access) == 1,
                            s.permits(kind, major, minor, access),
                            "{s:?}: {kind:?} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
    }
}
