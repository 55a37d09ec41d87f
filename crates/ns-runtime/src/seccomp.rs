//! seccomp: an OCI `linux.seccomp` profile compiled to classic BPF and loaded just before the
//! command runs. The program checks the architecture, then each rule in order (first match
//! wins: a syscall number, then its argument conditions), then returns the default action.
//! Every jump is short and forward, so no program outgrows BPF's 8-bit offsets.

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
    for (i, rule) in p.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), &rule.action, rule.errno_ret, default_errno)?;
        let mut conds = Vec::new();
        for (j, a) in rule.args.iter().enumerate() {
            conds.push(arg_check(&format!("{field}.args[{j}]"), a)?);
        }
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
            // Body: argument checks (each failure jumps to the end of the body), the return,
            // and a reload of the syscall number for the next rule.
            let mut body: Vec<Insn> = conds.iter().flatten().copied().collect();
            body.push(stmt(RET_K, act));
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
            body.push(stmt(LD_W_ABS, OFF_NR));
            if body.len() > 250 {
                return Err(SetupError::config(&field, "has too many argument conditions"));
            }
            prog.push(jump(JEQ_K, nr, 0, body.len() as u8));
            prog.extend(body);
        }
    }
    prog.push(stmt(RET_K, default));
    if prog.len() > 4096 {
        return Err(SetupError::config("linux.seccomp", "compiles to more than 4096 instructions"));
    }
    Ok(prog)
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

    #[test]
    fn a_rule_without_args_is_a_compare_and_a_return() {
        let p = profile(vec![Rule {
            names: vec!["mount".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(1),
            args: vec![],
        }]);
        let prog = compile(&p).unwrap();
        // 6 of preamble, then: jeq mount -> next, else skip 2; ret errno(1); reload nr; ret allow
        assert_eq!(prog[6], jump(JEQ_K, 165, 0, 2));
        assert_eq!(prog[7], stmt(RET_K, RET_ERRNO | 1));
        assert_eq!(prog[8], stmt(LD_W_ABS, OFF_NR));
        assert_eq!(*prog.last().unwrap(), stmt(RET_K, RET_ALLOW));
    }

    #[test]
    fn argument_failures_jump_past_the_return() {
        let p = profile(vec![Rule {
            names: vec!["clone".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: None,
            args: vec![Arg {
                index: 0,
                value: 0x7E02_0000,
                value_two: 0,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
        }]);
        let prog = compile(&p).unwrap();
        let body = &prog[7..];
        // ld hi; and; jeq thi (fail -> past ret); ld lo; and; jeq tlo (fail -> past ret); ret; ld nr
        assert_eq!(body[2].jf, 4);
        assert_eq!(body[5].jf, 1);
        assert_eq!(body[6], stmt(RET_K, RET_ERRNO | libc::EPERM as u32));
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
