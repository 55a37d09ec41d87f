//! The last steps before the container's program runs: limits, identity, and `execve`.

use std::ffi::CString;

use crate::error::{Context, Result, SetupError};
use crate::spec::{IoPriority, Personality, Rlimit, Scheduler, User};
use crate::sys::{self, Errno};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

pub fn validate_rlimits(rlimits: &[Rlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        if rlimit_resource(&r.kind).is_none() {
            return Err(SetupError::config(
                format!("process.rlimits[{i}].type"),
                format!("unknown resource {:?}", r.kind),
            ));
        }
        if r.soft > r.hard {
            return Err(SetupError::config(
                format!("process.rlimits[{i}].soft"),
                "must not exceed hard",
            ));
        }
    }
    Ok(())
}

pub fn apply_rlimits(rlimits: &[Rlimit]) -> Result<()> {
    for r in rlimits {
        let Some(res) = rlimit_resource(&r.kind) else { continue };
        let lim = libc::rlimit { rlim_cur: r.soft, rlim_max: r.hard };
        // SAFETY: lim is a valid rlimit.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = SetupError::sys("set", Some(&r.kind), Errno::last());
            return Err(if e.code == "EPERM" {
                e.with_hint("an rlimit cannot be raised above the hard limit ns itself runs with unless it holds CAP_SYS_RESOURCE")
            } else {
                e
            });
        }
    }
    Ok(())
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() != "deny").unwrap_or(true)
}

/// Take on the container user's identity: supplementary groups, gid, then uid (last, since it
/// drops the privilege the others need).
pub fn switch_user(user: &User) -> Result<()> {
    // Where /proc/self is not this process's (chrooted into a root without /proc, or a mount
    // namespace joined whose /proc is another pid namespace's), setgroups is tried: EPERM there
    // is a user namespace made with setgroups denied, as the file would have said.
    let mut denied = !setgroups_allowed();
    if !denied {
        let gids: Vec<libc::gid_t> = user.additional_gids.clone();
        // SAFETY: pointer and length of a valid vector.
        if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
            let e = Errno::last();
            if e.0 != libc::EPERM || std::path::Path::new("/proc/self/setgroups").exists() {
                return Err(SetupError::sys("setgroups", None, e));
            }
            denied = true;
        }
    }
    if denied && !user.additional_gids.is_empty() {
        return Err(SetupError::config(
            "process.user.additionalGids",
            "cannot be set: the user namespace was created with setgroups denied (unprivileged caller)",
        ));
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(user.gid, user.gid, user.gid) } != 0 {
        return Err(SetupError::sys("setgid to", Some(&user.gid.to_string()), Errno::last())
            .with_hint(
                "the gid must be mapped in the container's user namespace (linux.gidMappings)",
            ));
    }
    if unsafe { libc::setresuid(user.uid, user.uid, user.uid) } != 0 {
        return Err(SetupError::sys("setuid to", Some(&user.uid.to_string()), Errno::last())
            .with_hint(
                "the uid must be mapped in the container's user namespace (linux.uidMappings)",
            ));
    }
    if let Some(mask) = user.umask {
        // SAFETY: plain syscall.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}

/// The user switch with the capability sets around it (see `caps`); without sets, the
/// capabilities are left as the user switch leaves them.
pub fn take_identity(user: &User, caps: Option<&crate::caps::CapSets>) -> Result<()> {
    if let Some(c) = caps {
        crate::caps::drop_bounding(c)?;
    }
    switch_user(user)?;
    if let Some(c) = caps {
        crate::caps::apply(c)?;
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SetupError::sys("set no_new_privs", None, Errno::last()));
    }
    Ok(())
}

/// The program and its environment, made ready before the fork so the child only calls execve.
pub struct Command {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    name: String,
}

impl Command {
    pub fn new(args: &[String], env: &[String]) -> Result<Command> {
        let name = args
            .first()
            .cloned()
            .ok_or_else(|| SetupError::config("process.args", "must not be empty"))?;
        let to_c = |s: &String, field: &str| {
            CString::new(s.as_str())
                .map_err(|_| SetupError::config(field, "must not contain NUL bytes"))
        };
        let argv = args.iter().map(|a| to_c(a, "process.args")).collect::<Result<Vec<_>>>()?;
        let envp = env.iter().map(|e| to_c(e, "process.env")).collect::<Result<Vec<_>>>()?;
        let candidates = if name.contains('/') {
            vec![to_c(&name, "process.args")?]
        } else {
            let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| to_c(&format!("{d}/{name}"), "process.args"))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(Command { candidates, argv, envp, name })
    }

    /// No command yet (a warm container's comes later): executing it fails as a command that
    /// is not there does.
    pub fn pending() -> Command {
        Command { candidates: Vec::new(), argv: Vec::new(), envp: Vec::new(), name: String::new() }
    }

    /// Check, before the container is reported created, that the command can be executed: an
    /// engine learns at `create` that `start` would fail (as it does from runc).
    pub fn preflight(&self) -> Result<(), (SetupError, i32)> {
        let mut last = Errno(libc::ENOENT);
        let mut denied = None;
        for c in &self.candidates {
            // SAFETY: c is a valid C string; st is written by stat.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
                last = Errno::last();
                continue;
            }
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                denied = Some(Errno(libc::EACCES));
                continue;
            }
            // SAFETY: as above.
            if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
                return Ok(());
            }
            denied = Some(Errno::last());
        }
        Err(self.failure(denied.unwrap_or(last)))
    }

    /// Replace this process with the command. Returns only on failure, with the error and the
    /// exit code to use: 127 when nothing was found, 126 when it could not be executed.
    pub fn exec(&self) -> (SetupError, i32) {
        let p = self.pointers();
        self.failure(self.exec_with(&p))
    }

    /// The null-terminated arrays `execve` takes, made ahead (see `exec_with`).
    pub fn pointers(&self) -> ExecPointers {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|c| c.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        ExecPointers { argv, envp }
    }

    /// `execve` of each candidate in turn, with arrays made by `pointers`: returns only on
    /// failure, with the error that tells why. It allocates nothing and takes no lock, so a
    /// process that shares its memory with another until it executes may call it.
    pub fn exec_with(&self, p: &ExecPointers) -> Errno {
        let mut denied = None;
        let mut last = Errno(libc::ENOENT);
        for c in &self.candidates {
            // SAFETY: argv and envp are null-terminated arrays of valid C strings.
            unsafe { libc::execve(c.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr()) };
            last = Errno::last();
            match last.0 {
                libc::ENOENT | libc::ENOTDIR => continue,
                libc::EACCES | libc::EPERM => denied = Some(last),
                _ => break,
            }
        }
        denied.filter(|_| matches!(last.0, libc::ENOENT | libc::ENOTDIR)).unwrap_or(last)
    }

    /// The exit code of a command that could not be executed for `e` (as `failure` gives it).
    pub fn failure_code(&self, e: Errno) -> i32 {
        match e.0 {
            libc::ENOENT | libc::ENOTDIR => 127,
            _ => 126,
        }
    }

    /// Why the command could not be executed, and the exit code to use.
    pub fn failure(&self, e: Errno) -> (SetupError, i32) {
        let name = &self.name;
        let (message, code) = match e.0 {
            libc::ENOENT | libc::ENOTDIR if !name.contains('/') => {
                (format!("exec {name:?}: executable file not found in $PATH"), 127)
            }
            libc::ENOENT | libc::ENOTDIR => {
                (format!("exec {name:?}: no such file or directory"), 127)
            }
            _ => (format!("exec {name:?}: {} ({})", e.name(), e.describe()), 126),
        };
        let mut err = SetupError::sys("exec", Some(name), e);
        err.message = message;
        (err, code)
    }
}

/// The argument and environment arrays of a command, as `execve` takes them; the strings are
/// the command's own, which must outlive them.
pub struct ExecPointers {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

/// chdir to the container's working directory, after the user switch so permissions apply.
pub fn enter_cwd(cwd: &str) -> Result<()> {
    sys::chdir(cwd).step("chdir to", Some(cwd))
}

/// What the process is given beyond its identity and limits, checked before the clone:
/// its I/O priority, its CPU scheduling, its execution domain. Each is inherited by what it
/// starts (the init's command, and the command's own children).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The value for ioprio_set: class << 13 | priority.
    pub io_priority: Option<i32>,
    pub scheduler: Option<SchedAttr>,
    /// The value for personality(2).
    pub personality: Option<libc::c_ulong>,
}

/// `struct sched_attr` (the first version of it, 48 bytes), as sched_setattr takes it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// The I/O scheduling classes of ioprio_set, by the names of the runtime spec.
const IOPRIO_CLASSES: [(&str, i32); 3] =
    [("IOPRIO_CLASS_RT", 1), ("IOPRIO_CLASS_BE", 2), ("IOPRIO_CLASS_IDLE", 3)];

/// The scheduling policies, by the runtime spec's names (SCHED_ISO is named, Linux has none).
const SCHED_POLICIES: [(&str, u32); 7] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

const SCHED_FLAGS: [(&str, u64); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

/// The execution domains of `linux.personality` (PER_LINUX, PER_LINUX32).
const PERSONALITIES: [(&str, libc::c_ulong); 2] = [("LINUX", 0x0000), ("LINUX32", 0x0008)];

impl Attributes {
    /// Check the process's `ioPriority` and `scheduler` and the container's `personality`;
    /// `field` is where the process lies in the spec (`process`).
    pub fn plan(
        field: &str,
        io: Option<&IoPriority>,
        sched: Option<&Scheduler>,
        personality: Option<&Personality>,
    ) -> Result<Attributes> {
        let mut a = Attributes::default();
        if let Some(io) = io {
            let class = IOPRIO_CLASSES.iter().find(|(n, _)| *n == io.class).ok_or_else(|| {
                SetupError::config(
                    format!("{field}.ioPriority.class"),
                    format!("unknown class {:?} (IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)", io.class),
                )
            })?;
            if !(0..=7).contains(&io.priority) {
                return Err(SetupError::config(
                    format!("{field}.ioPriority.priority"),
                    "must be from 0 (highest) to 7",
                ));
            }
            a.io_priority = Some(class.1 << 13 | io.priority);
        }
        if let Some(s) = sched {
            let f = |k: &str| format!("{field}.scheduler.{k}");
            let policy = SCHED_POLICIES.iter().find(|(n, _)| *n == s.policy).ok_or_else(|| {
                SetupError::config(f("policy"), format!("unknown policy {:?}", s.policy))
            })?;
            if policy.0 == "SCHED_ISO" {
                return Err(SetupError::config(f("policy"), "SCHED_ISO is not a policy Linux has"));
            }
            let mut flags = 0;
            for (i, name) in s.flags.iter().enumerate() {
                let fl = SCHED_FLAGS.iter().find(|(n, _)| n == name).ok_or_else(|| {
                    SetupError::config(
                        format!("{}[{i}]", f("flags")),
                        format!("unknown flag {name:?}"),
                    )
                })?;
                flags |= fl.1;
            }
            if !(-20..=19).contains(&s.nice) {
                return Err(SetupError::config(f("nice"), "must be from -20 to 19"));
            }
            let realtime = matches!(policy.0, "SCHED_FIFO" | "SCHED_RR");
            if realtime && !(1..=99).contains(&s.priority) {
                return Err(SetupError::config(
                    f("priority"),
                    "must be from 1 to 99 for SCHED_FIFO and SCHED_RR",
                ));
            }
            if !realtime && s.priority != 0 {
                return Err(SetupError::config(
                    f("priority"),
                    format!("must be 0 for {}", policy.0),
                ));
            }
            if policy.0 == "SCHED_DEADLINE"
                && !(s.runtime <= s.deadline
                    && (s.period == 0 || s.deadline <= s.period)
                    && s.runtime > 0)
            {
                return Err(SetupError::config(
                    f("runtime"),
                    "SCHED_DEADLINE needs 0 < runtime <= deadline <= period (or no period)",
                ));
            }
            a.scheduler = Some(SchedAttr {
                size: std::mem::size_of::<SchedAttr>() as u32,
                policy: policy.1,
                flags,
                nice: s.nice,
                priority: s.priority as u32,
                runtime: s.runtime,
                deadline: s.deadline,
                period: s.period,
            });
        }
        if let Some(p) = personality {
            let d = PERSONALITIES.iter().find(|(n, _)| *n == p.domain).ok_or_else(|| {
                SetupError::config(
                    "linux.personality.domain",
                    format!("unknown domain {:?} (LINUX or LINUX32)", p.domain),
                )
            })?;
            if !p.flags.is_empty() {
                return Err(SetupError::config(
                    "linux.personality.flags",
                    "no flag is defined by the runtime spec; leave it empty",
                ));
            }
            a.personality = Some(d.1);
        }
        Ok(a)
    }

    /// Give them to this process (while it still holds the privileges they may need).
    pub fn apply(&self) -> Result<()> {
        if let Some(v) = self.io_priority {
            // SAFETY: plain syscall: ioprio_set(IOPRIO_WHO_PROCESS, 0 = this process, value).
            if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, v) } != 0 {
                let e = SetupError::sys(
                    "set the I/O priority (process.ioPriority)",
                    None,
                    Errno::last(),
                );
                return Err(if e.code == "EPERM" {
                    e.with_hint(
                        "the realtime class needs CAP_SYS_ADMIN or CAP_SYS_NICE on the host",
                    )
                } else {
                    e
                });
            }
        }
        if let Some(attr) = &self.scheduler {
            // SAFETY: attr is a valid sched_attr of the size it says; pid 0 is this process.
            if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) }
                != 0
            {
                let e = SetupError::sys(
                    "set the scheduling policy (process.scheduler)",
                    None,
                    Errno::last(),
                );
                return Err(if e.code == "EPERM" {
                    e.with_hint("realtime and deadline policies, and a nice value below the current one, need CAP_SYS_NICE on the host")
                } else {
                    e
                });
            }
        }
        if let Some(p) = self.personality {
            // SAFETY: plain syscall.
            if unsafe { libc::personality(p) } < 0 {
                return Err(SetupError::sys(
                    "set the personality (linux.personality)",
                    None,
                    Errno::last(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(policy: &str, priority: i32) -> Scheduler {
        Scheduler { policy: policy.into(), priority, ..Default::default() }
    }

    #[test]
    fn io_priority_scheduler_and_personality_become_the_kernel_s_values() {
        let io = IoPriority { class: "IOPRIO_CLASS_BE".into(), priority: 6 };
        let s = Scheduler {
            nice: 5,
            flags: vec!["SCHED_FLAG_RESET_ON_FORK".into()],
            ..sched("SCHED_BATCH", 0)
        };
        let per = Personality { domain: "LINUX32".into(), flags: vec![] };
        let a = Attributes::plan("process", Some(&io), Some(&s), Some(&per)).unwrap();
        assert_eq!(a.io_priority, Some(2 << 13 | 6));
        let attr = a.scheduler.unwrap();
        assert_eq!((attr.size, attr.policy, attr.flags, attr.nice), (48, 3, 1, 5));
        assert_eq!(a.personality, Some(8));
        assert_eq!(Attributes::plan("process", None, None, None).unwrap(), Attributes::default());
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |io: Option<IoPriority>, s: Option<Scheduler>, p: Option<Personality>| {
            Attributes::plan("process", io.as_ref(), s.as_ref(), p.as_ref())
                .unwrap_err()
                .path
                .unwrap()
        };
        let io = |c: &str, p| Some(IoPriority { class: c.into(), priority: p });
        assert_eq!(field(io("IOPRIO_CLASS_NOPE", 0), None, None), "process.ioPriority.class");
        assert_eq!(field(io("IOPRIO_CLASS_RT", 8), None, None), "process.ioPriority.priority");
        assert_eq!(field(None, Some(sched("SCHED_NOPE", 0)), None), "process.scheduler.policy");
        assert_eq!(field(None, Some(sched("SCHED_ISO", 0)), None), "process.scheduler.policy");
        assert_eq!(field(None, Some(sched("SCHED_FIFO", 0)), None), "process.scheduler.priority");
        assert_eq!(field(None, Some(sched("SCHED_OTHER", 3)), None), "process.scheduler.priority");
        let flags = Scheduler { flags: vec!["SCHED_FLAG_NOPE".into()], ..sched("SCHED_OTHER", 0) };
        assert_eq!(field(None, Some(flags), None), "process.scheduler.flags[0]");
        assert_eq!(
            field(None, Some(Scheduler { nice: 40, ..sched("SCHED_OTHER", 0) }), None),
            "process.scheduler.nice"
        );
        let dl = Scheduler { runtime: 10, deadline: 5, ..sched("SCHED_DEADLINE", 0) };
        assert_eq!(field(None, Some(dl), None), "process.scheduler.runtime");
        let per = |d: &str, f: &[&str]| {
            Some(Personality { domain: d.into(), flags: f.iter().map(|x| x.to_string()).collect() })
        };
        assert_eq!(field(None, None, per("LINUX64", &[])), "linux.personality.domain");
        assert_eq!(field(None, None, per("LINUX", &["X"])), "linux.personality.flags");
    }
}
