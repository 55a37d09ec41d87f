//! seccomp: an OCI `linux.seccomp` profile compiled to classic BPF and loaded just before the
//! command runs. The program checks the architecture, then finds the system call's number by a
//! binary search, then tries the rules that name it in the profile's order (first match wins:
//! its argument conditions), then returns the default action. Conditional jumps are short and
//! forward; the search's longer ones are unconditional (`ja`, 32-bit offsets).

use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
use crate::sys::Errno;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

// Classic BPF, as linux/filter.h and linux/seccomp.h define it.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;
const JA: u16 = 0x05;
/// The most instructions the kernel takes in one program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_BIT: u32 = 0x4000_0000;
// struct seccomp_data: nr (0), arch (4), ip (8), args (16 + 8 * i).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// The actions a profile may name, and the filter's return value for each (`SCMP_ACT_ERRNO`
/// and `SCMP_ACT_TRACE` carry the rule's errno in its low 16 bits).
pub const ACTIONS: [(&str, u32); 8] = [
    ("SCMP_ACT_ALLOW", RET_ALLOW),
    ("SCMP_ACT_ERRNO", RET_ERRNO),
    ("SCMP_ACT_KILL", RET_KILL_THREAD),
    ("SCMP_ACT_KILL_THREAD", RET_KILL_THREAD),
    ("SCMP_ACT_KILL_PROCESS", RET_KILL_PROCESS),
    ("SCMP_ACT_TRAP", RET_TRAP),
    ("SCMP_ACT_TRACE", RET_TRACE),
    ("SCMP_ACT_LOG", RET_LOG),
];

/// The comparisons an argument condition may name (`arg_check` compiles each).
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The architectures this runtime names. The filter lets through the calls of x86_64 alone:
/// those of any other architecture (i386, x32, or one a profile names for another machine)
/// fail with ENOSYS, whatever the profile lists.
pub const ARCHITECTURES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

fn action(field: &str, name: &str, errno: Option<u32>, default_errno: u32) -> Result<u32> {
    let Some(&(_, ret)) = ACTIONS.iter().find(|(n, _)| *n == name) else {
        return Err(SetupError::config(field, format!("unsupported action {name:?}")));
    };
    Ok(match ret {
        RET_ERRNO => ret | (errno.unwrap_or(default_errno) & 0xffff),
        RET_TRACE => ret | (errno.unwrap_or(0) & 0xffff),
        _ => ret,
    })
}

pub fn syscall_number(name: &str) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        crate::syscalls::X86_64.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

/// The instructions that, with the argument's 64 bits loaded word by word, fall through when
/// the condition holds and jump `fail` instructions past their end when it does not.
fn arg_check(field: &str, a: &Arg) -> Result<Vec<Insn>> {
    if a.index > 5 {
        return Err(SetupError::config(format!("{field}.index"), "must be 0 to 5"));
    }
    let lo_off = 16 + 8 * a.index;
    let hi_off = lo_off + 4;
    let (vlo, vhi) = (a.value as u32, (a.value >> 32) as u32);
    let mut v = Vec::new();
    // Each block ends where the condition held; "F" marks a jump to fail, patched below.
    const F: u8 = 0xff;
    match a.op.as_str() {
        "SCMP_CMP_EQ" => {
            v.push(stmt(LD_W_ABS, hi_off));
            v.push(jump(JEQ_K, vhi, 0, F));
            v.push(stmt(LD_W_ABS, lo_off));
            v.push(jump(JEQ_K, vlo, 0, F));
        }
        "SCMP_CMP_NE" => {
            // Holds unless both words are equal.
            v.push(stmt(LD_W_ABS, hi_off));
            v.push(jump(JEQ_K, vhi, 0, 2));
            v.push(stmt(LD_W_ABS, lo_off));
            v.push(jump(JEQ_K, vlo, F, 0));
        }
        "SCMP_CMP_MASKED_EQ" => {
            let (mlo, mhi) = (a.value as u32, (a.value >> 32) as u32);
            let (tlo, thi) = (a.value_two as u32, (a.value_two >> 32) as u32);
            v.push(stmt(LD_W_ABS, hi_off));
            v.push(stmt(AND_K, mhi));
            v.push(jump(JEQ_K, thi, 0, F));
            v.push(stmt(LD_W_ABS, lo_off));
            v.push(stmt(AND_K, mlo));
            v.push(jump(JEQ_K, tlo, 0, F));
        }
        op @ ("SCMP_CMP_GT" | "SCMP_CMP_GE" | "SCMP_CMP_LT" | "SCMP_CMP_LE") => {
            // Compare the high words; only when they are equal do the low words decide.
            let greater = op == "SCMP_CMP_GT" || op == "SCMP_CMP_GE";
            let low_code = if op == "SCMP_CMP_GT" || op == "SCMP_CMP_LE" { JGT_K } else { JGE_K };
            v.push(stmt(LD_W_ABS, hi_off));
            if greater {
                v.push(jump(JGT_K, vhi, 3, 0)); // hi > vhi: holds
                v.push(jump(JEQ_K, vhi, 0, F)); // hi < vhi: fails
                v.push(stmt(LD_W_ABS, lo_off));
                v.push(jump(low_code, vlo, 0, F));
            } else {
                v.push(jump(JGT_K, vhi, F, 0)); // hi > vhi: fails
                v.push(jump(JEQ_K, vhi, 0, 2)); // hi < vhi: holds
                v.push(stmt(LD_W_ABS, lo_off));
                // LT: fails when lo >= vlo; LE: fails when lo > vlo.
                v.push(jump(low_code, vlo, F, 0));
            }
        }
        other => {
            return Err(SetupError::config(
                format!("{field}.op"),
                format!("unsupported operator {other:?}"),
            ))
        }
    }
    Ok(v)
}

/// A rule's code for one system call: its argument checks (each failure jumps to the end of
/// the code), then the return of its action.
fn rule_body(field: &str, conds: &[Vec<Insn>], act: u32) -> Result<Vec<Insn>> {
    let mut body: Vec<Insn> = conds.iter().flatten().copied().collect();
    body.push(stmt(RET_K, act));
    // Every failure jumps to the end with a conditional jump: at most 255 instructions on.
    if body.len() > 250 {
        return Err(SetupError::config(field, "has too many argument conditions"));
    }
    let fail_target = body.len(); // the instruction after the return
    for (idx, ins) in body.iter_mut().enumerate() {
        let to_fail = (fail_target - idx - 1) as u8;
        if ins.jt == 0xff {
            ins.jt = to_fail;
        }
        if ins.jf == 0xff {
            ins.jf = to_fail;
        }
    }
    Ok(body)
}

/// The leaves of the search tree below this many are compared one by one.
const LINEAR: usize = 4;

/// A search over `leaves` (system call numbers in increasing order, each with its code, which
/// ends in returns), the number being in the accumulator: the code of the one it is, else the
/// default action. Halves are chosen with `jge`, so each number costs a few comparisons rather
/// than one per rule: the kernel runs the filter over every system call number when it is
/// loaded (to cache the calls it always allows), and that pass is what a long chain of
/// compares makes slow.
fn search(leaves: &[(u32, Vec<Insn>)], default: u32) -> Vec<Insn> {
    let mut out = Vec::new();
    if leaves.len() <= LINEAR {
        for (nr, code) in leaves {
            match u8::try_from(code.len()) {
                Ok(len) => out.push(jump(JEQ_K, *nr, 0, len)),
                Err(_) => {
                    // Too long to skip with a conditional jump: over it with an unconditional one.
                    out.push(jump(JEQ_K, *nr, 1, 0));
                    out.push(stmt(JA, code.len() as u32));
                }
            }
            out.extend_from_slice(code);
        }
        out.push(stmt(RET_K, default));
        return out;
    }
    let mid = leaves.len() / 2;
    let left = search(&leaves[..mid], default);
    let right = search(&leaves[mid..], default);
    // At or above the middle: over the lower half.
    out.push(jump(JGE_K, leaves[mid].0, 0, 1));
    out.push(stmt(JA, left.len() as u32));
    out.extend(left);
    out.extend(right);
    out
}

/// Compile a profile to a BPF program.
pub fn compile(p: &Profile) -> Result<Vec<Insn>> {
    let default_errno = p.default_errno_ret.unwrap_or(libc::EPERM as u32);
    let default = action(
        "linux.seccomp.defaultAction",
        &p.default_action,
        p.default_errno_ret,
        default_errno,
    )?;
    for (i, a) in p.architectures.iter().enumerate() {
        if !ARCHITECTURES.contains(&a.as_str()) && !a.starts_with("SCMP_ARCH_") {
            return Err(SetupError::config(
                format!("linux.seccomp.architectures[{i}]"),
                format!("unknown architecture {a:?}"),
            ));
        }
    }
    if cfg!(not(target_arch = "x86_64")) {
        return Err(SetupError::config(
            "linux.seccomp",
            "profiles are supported on x86_64 only in this build",
        ));
    }
    let mut prog = vec![
        // Another architecture's system call numbers mean other calls: refuse them all.
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
        stmt(LD_W_ABS, OFF_NR),
        // The x32 ABI shares the architecture value: refuse it too.
        jump(JGE_K, X32_BIT, 0, 1),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
    ];
    // For each system call, the code of the rules that name it, in the profile's order: the
    // first whose arguments match decides (as in a profile read top to bottom; rules for other
    // calls never do, so the calls may be searched in any order).
    let mut by_nr: std::collections::BTreeMap<u32, (Vec<Insn>, bool)> = Default::default();
    for (i, rule) in p.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), &rule.action, rule.errno_ret, default_errno)?;
        let mut conds = Vec::new();
        for (j, a) in rule.args.iter().enumerate() {
            conds.push(arg_check(&format!("{field}.args[{j}]"), a)?);
        }
        let body = rule_body(&field, &conds, act)?;
        for (k, name) in rule.names.iter().enumerate() {
            let Some(nr) = syscall_number(name) else {
                // Unknown to this kernel's table: the call cannot be made here, nothing to filter.
                if name.is_empty() {
                    return Err(SetupError::config(
                        format!("{field}.names[{k}]"),
                        "must not be empty",
                    ));
                }
                continue;
            };
            let (code, decided) = by_nr.entry(nr).or_default();
            // After a rule without conditions, the call's later rules are never reached.
            if !*decided {
                code.extend_from_slice(&body);
                *decided = conds.is_empty();
            }
            if code.len() > MAX_INSNS {
                return Err(SetupError::config(&field, "has too many argument conditions"));
            }
        }
    }
    // Each call's code ends with the default action, for when none of its rules matched.
    let leaves: Vec<(u32, Vec<Insn>)> = by_nr
        .into_iter()
        .map(|(nr, (mut code, decided))| {
            if !decided {
                code.push(stmt(RET_K, default));
            }
            (nr, code)
        })
        .collect();
    prog.extend(search(&leaves, default));
    if prog.len() > MAX_INSNS {
        return Err(SetupError::config("linux.seccomp", "compiles to more than 4096 instructions"));
    }
    Ok(prog)
}

/// What the program returns for system call `nr` of x86_64 with `args`: the classic BPF the
/// compiler emits, run in user space (an instruction it does not emit counts as a kill).
pub fn decide(prog: &[Insn], nr: u32, args: [u64; 6]) -> u32 {
    decide_for(prog, AUDIT_ARCH_X86_64, nr, args)
}

fn decide_for(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> Option<u32> {
        match off {
            OFF_NR => Some(nr),
            OFF_ARCH => Some(arch),
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let a = args[((o - 16) / 8) as usize];
                Some(if (o - 16) % 8 == 0 { a as u32 } else { (a >> 32) as u32 })
            }
            _ => None,
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    while let Some(i) = prog.get(pc) {
        pc += 1;
        match i.code {
            LD_W_ABS => match word(i.k) {
                Some(w) => acc = w,
                None => return RET_KILL_PROCESS,
            },
            AND_K => acc &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match i.code {
                    JEQ_K => acc == i.k,
                    JGT_K => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            _ => return RET_KILL_PROCESS,
        }
    }
    RET_KILL_PROCESS
}

/// Does the program allow every one of `calls` (names of x86_64 system calls, with their
/// arguments)? A name this build does not know is not allowed.
pub fn allows(prog: &[Insn], calls: &[(&str, [u64; 6])]) -> bool {
    calls.iter().all(|(name, args)| {
        syscall_number(name).is_some_and(|nr| decide(prog, nr, *args) == RET_ALLOW)
    })
}

/// Load the program for this thread and its children (no_new_privs must be set, or
/// CAP_SYS_ADMIN held).
pub fn load(prog: &[Insn]) -> Result<()> {
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const Insn,
    }
    let f = Fprog { len: prog.len() as u16, filter: prog.as_ptr() };
    // SAFETY: prctl with a valid sock_fprog that outlives the call.
    if unsafe {
        libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &f as *const Fprog, 0, 0)
    } != 0
    {
        return Err(SetupError::sys("load the seccomp filter", None, Errno::last())
            .with_hint("seccomp needs no_new_privs (process.noNewPrivileges) or CAP_SYS_ADMIN"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(rules: Vec<Rule>) -> Profile {
        Profile { default_action: "SCMP_ACT_ALLOW".into(), syscalls: rules, ..Default::default() }
    }

    fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        decide_for(prog, arch, nr, args)
    }

    /// What a profile means, read as it is written: the first rule that names the call and
    /// whose conditions all hold decides; else the default.
    fn meaning(p: &Profile, nr: u32, args: [u64; 6]) -> u32 {
        let default_errno = p.default_errno_ret.unwrap_or(libc::EPERM as u32);
        for r in &p.syscalls {
            if !r.names.iter().any(|n| syscall_number(n) == Some(nr)) {
                continue;
            }
            let holds = r.args.iter().all(|a| {
                let v = args[a.index as usize];
                match a.op.as_str() {
                    "SCMP_CMP_EQ" => v == a.value,
                    "SCMP_CMP_NE" => v != a.value,
                    "SCMP_CMP_LT" => v < a.value,
                    "SCMP_CMP_LE" => v <= a.value,
                    "SCMP_CMP_GE" => v >= a.value,
                    "SCMP_CMP_GT" => v > a.value,
                    "SCMP_CMP_MASKED_EQ" => v & a.value == a.value_two,
                    o => panic!("op {o}"),
                }
            });
            if holds {
                return action("", &r.action, r.errno_ret, default_errno).unwrap();
            }
        }
        action("", &p.default_action, p.default_errno_ret, default_errno).unwrap()
    }

    /// A small generator, seeded, so a failure can be replayed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A profile of `rules` random rules: names from the syscall table (some repeated across
    /// rules), actions, and conditions with every operator on values near the edges.
    fn random_profile(rng: &mut Rng, rules: usize) -> Profile {
        let table = crate::syscalls::X86_64;
        let edges = [0u64, 1, 2, 0x7E02_0000, 0xffff_ffff, 0x1_0000_0000, u64::MAX, 8, 9];
        let mut syscalls = Vec::new();
        for _ in 0..rules {
            let names = (0..1 + rng.below(40))
                .map(|_| {
                    table[rng.below(64.min(table.len() as u64)) as usize
                        * (1 + rng.below(5) as usize)
                        % table.len()]
                    .0
                    .to_string()
                })
                .collect();
            let args = (0..rng.below(3))
                .map(|_| Arg {
                    index: rng.below(6) as u32,
                    value: edges[rng.below(edges.len() as u64) as usize],
                    value_two: edges[rng.below(edges.len() as u64) as usize],
                    op: OPERATORS[rng.below(OPERATORS.len() as u64) as usize].to_string(),
                })
                .collect();
            let action = ACTIONS[rng.below(ACTIONS.len() as u64) as usize].0.to_string();
            syscalls.push(Rule { names, action, errno_ret: Some(rng.below(100) as u32), args });
        }
        Profile {
            default_action: if rng.below(2) == 0 { "SCMP_ACT_ALLOW" } else { "SCMP_ACT_ERRNO" }
                .into(),
            default_errno_ret: Some(38),
            ..Default::default()
        }
        .with(syscalls)
    }

    impl Profile {
        fn with(mut self, syscalls: Vec<Rule>) -> Profile {
            self.syscalls = syscalls;
            self
        }
    }

    #[test]
    fn the_program_decides_every_call_as_the_profile_reads_first_match_wins() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let edges =
            [0u64, 1, 2, 3, 0x7E02_0000, 0x7E02_0001, 0xffff_ffff, 0x1_0000_0000, u64::MAX, 8, 9];
        for round in 0..40 {
            let p = random_profile(&mut rng, 1 + round % 30);
            let prog = compile(&p).unwrap();
            let named: std::collections::BTreeSet<u32> = p
                .syscalls
                .iter()
                .flat_map(|r| r.names.iter().filter_map(|n| syscall_number(n)))
                .collect();
            for nr in 0..470u32 {
                // A call no rule names: the default, whatever its arguments (one probe will do).
                let probes = if named.contains(&nr) { 8 } else { 1 };
                for _ in 0..probes {
                    let mut args = [0u64; 6];
                    for a in args.iter_mut() {
                        *a = if rng.below(3) == 0 {
                            rng.next()
                        } else {
                            edges[rng.below(edges.len() as u64) as usize]
                        };
                    }
                    assert_eq!(
                        run(&prog, AUDIT_ARCH_X86_64, nr, args),
                        meaning(&p, nr, args),
                        "round {round}, nr {nr}, args {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_architectures_and_x32_get_enosys() {
        let p = profile(vec![Rule {
            names: vec!["read".into()],
            action: "SCMP_ACT_ALLOW".into(),
            ..Default::default()
        }]);
        let prog = compile(&p).unwrap();
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&prog, 0x4000_0003, 0, [0; 6]), enosys, "i386");
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, X32_BIT, [0; 6]), enosys, "x32");
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 0, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn a_call_costs_a_few_comparisons_not_one_per_rule() {
        // 300 calls, each in a rule of its own: a chain would walk up to 300 compares.
        let table = crate::syscalls::X86_64;
        let rules: Vec<Rule> = table
            .iter()
            .take(300)
            .map(|(n, _)| Rule {
                names: vec![n.to_string()],
                action: "SCMP_ACT_ERRNO".into(),
                ..Default::default()
            })
            .collect();
        let prog = compile(&profile(rules)).unwrap();
        let steps = |nr: u32| {
            let (mut pc, mut n, mut acc) = (0usize, 0, 0u32);
            loop {
                let i = prog[pc];
                pc += 1;
                n += 1;
                match i.code {
                    LD_W_ABS => acc = if i.k == OFF_NR { nr } else { AUDIT_ARCH_X86_64 },
                    RET_K => return n,
                    JA => pc += i.k as usize,
                    _ => {
                        let taken = if i.code == JEQ_K { acc == i.k } else { acc >= i.k };
                        pc += if taken { i.jt } else { i.jf } as usize;
                    }
                }
            }
        };
        let worst = (0..470).map(steps).max().unwrap();
        assert!(worst <= 30, "{worst} instructions for one call");
    }

    #[test]
    fn a_call_with_more_code_than_a_conditional_jump_skips_is_jumped_over_whole() {
        // Four rules for read of 20 conditions each: over 300 instructions for one call.
        let conds = |k: u64| -> Vec<Arg> {
            (0..20)
                .map(|i| Arg {
                    index: (i % 6) as u32,
                    value: k * 100 + i,
                    op: "SCMP_CMP_NE".into(),
                    ..Default::default()
                })
                .collect()
        };
        let mut rules: Vec<Rule> = (0..4)
            .map(|k| Rule {
                names: vec!["read".into()],
                action: "SCMP_ACT_ERRNO".into(),
                args: conds(k),
                errno_ret: Some(5 + k as u32),
            })
            .collect();
        rules.push(Rule {
            names: vec!["write".into()],
            action: "SCMP_ACT_ERRNO".into(),
            ..Default::default()
        });
        let p = profile(rules);
        let prog = compile(&p).unwrap();
        assert!(prog.iter().any(|i| i.code == JA && i.k > 255));
        for nr in [0u32, 1, 2] {
            for args in [[1000u64; 6], [0u64; 6], [100, 101, 2, 3, 4, 5], [200, 201, 102, 3, 4, 5]]
            {
                assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, args), meaning(&p, nr, args));
            }
        }
        // One rule of 70: refused, naming it.
        let long = (0..70)
            .map(|i| Arg {
                index: i % 6,
                value: i as u64,
                op: "SCMP_CMP_NE".into(),
                ..Default::default()
            })
            .collect();
        let p = profile(vec![Rule {
            names: vec!["read".into()],
            action: "SCMP_ACT_ERRNO".into(),
            args: long,
            errno_ret: None,
        }]);
        assert_eq!(compile(&p).unwrap_err().path.as_deref(), Some("linux.seccomp.syscalls[0]"));
    }

    #[test]
    fn allows_runs_the_program_on_the_calls_named_with_their_arguments() {
        // As Docker's profile: clone allowed unless it asks for a new namespace.
        let p = Profile {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![
                Rule {
                    names: vec!["read".into(), "write".into()],
                    action: "SCMP_ACT_ALLOW".into(),
                    ..Default::default()
                },
                Rule {
                    names: vec!["clone".into()],
                    action: "SCMP_ACT_ALLOW".into(),
                    args: vec![Arg {
                        index: 0,
                        value: 0x7E02_0000,
                        value_two: 0,
                        op: "SCMP_CMP_MASKED_EQ".into(),
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let prog = compile(&p).unwrap();
        let fork = [0x0120_0011, 0, 0, 0, 0, 0];
        assert!(allows(&prog, &[("read", [0; 6]), ("write", [0; 6]), ("clone", fork)]));
        assert!(!allows(&prog, &[("clone", [0x1000_0000 | 0x11, 0, 0, 0, 0, 0])]), "CLONE_NEWUSER");
        assert!(!allows(&prog, &[("read", [0; 6]), ("close", [0; 6])]), "close is not listed");
        assert!(!allows(&prog, &[("no_such_call", [0; 6])]));
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let p = profile(vec![Rule {
            names: vec!["mount".into()],
            action: "SCMP_ACT_NOPE".into(),
            ..Default::default()
        }]);
        assert_eq!(
            compile(&p).unwrap_err().message,
            "linux.seccomp.syscalls[0].action: unsupported action \"SCMP_ACT_NOPE\""
        );
        let p = Profile { default_action: "X".into(), ..Default::default() };
        assert!(compile(&p).unwrap_err().message.starts_with("linux.seccomp.defaultAction"));
        let p = profile(vec![Rule {
            names: vec!["read".into()],
            action: "SCMP_ACT_ALLOW".into(),
            args: vec![Arg { index: 9, op: "SCMP_CMP_EQ".into(), ..Default::default() }],
            ..Default::default()
        }]);
        assert_eq!(
            compile(&p).unwrap_err().path.as_deref(),
            Some("linux.seccomp.syscalls[0].args[0].index")
        );
    }
}
