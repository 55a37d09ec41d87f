//! The last steps before the container's program runs: limits, identity, and `execve`.

use std::ffi::CString;

use crate::error::{Context, Result, SetupError};
use crate::spec::{Rlimit, User};
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
    if setgroups_allowed() {
        let gids: Vec<libc::gid_t> = user.additional_gids.clone();
        // SAFETY: pointer and length of a valid vector.
        if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
            return Err(SetupError::sys("setgroups", None, Errno::last()));
        }
    } else if !user.additional_gids.is_empty() {
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
