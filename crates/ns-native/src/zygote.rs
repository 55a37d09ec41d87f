//! Our side of the zygote (`ns-oci zygote`, see ns_runtime::zygote): from the second helper a
//! process starts on, helpers are forked by a zygote instead of spawned, which spares each
//! container the exec and start-up of the helper.
//!
//! One zygote serves the process; a reader thread takes its replies into a book that the
//! threads of the pool wait on. A zygote is used only while the process is what it was when the
//! zygote started (ids, groups, capabilities, no_new_privs, seccomp, cgroup) and for the same
//! helper binary; otherwise it is retired (it ends once its helpers are released) and a new one
//! starts. Whatever goes wrong on this path, the caller falls back to spawning the helper.
//! `NS_ZYGOTE=0` in the environment turns the zygote off, `NS_ZYGOTE=1` uses it from the first
//! helper on.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};

use ns_runtime::zygote::{Reply, Request, MAX_MESSAGE};

struct Zygote {
    pid: i32,
    sock: Arc<OwnedFd>,
    helper: String,
    identity: String,
    alive: Arc<AtomicBool>,
    /// The environment it was last sent.
    env: Vec<CString>,
}

/// Exit status of a helper: (code, signal).
type Status = (Option<i32>, Option<i32>);

/// How a start through the zygote went.
pub enum Started {
    /// The helper runs as this pid.
    Forked(i32),
    /// The zygote did not fork it (or never got the request): the caller spawns it instead.
    NotForked,
    /// The zygote ended before it answered: whether it forked the helper is unknown, so the
    /// descriptors must not be used for another one.
    Lost(String),
}

#[derive(Default)]
struct Book {
    /// Answers to starts, by token.
    forked: HashMap<u32, Started>,
    /// Starts sent and not answered yet: token -> the zygote's socket (to fail them if it dies).
    waiting: HashMap<u32, Arc<OwnedFd>>,
    /// Helpers forked by a zygote and not reaped by us yet: pid -> that zygote's socket.
    children: HashMap<i32, Arc<OwnedFd>>,
    /// Helpers that ended, waiting for `reap`.
    exited: HashMap<i32, Status>,
}

static SLOT: Mutex<Option<Zygote>> = Mutex::new(None);
static BOOK: LazyLock<(Mutex<Book>, Condvar)> =
    LazyLock::new(|| (Mutex::new(Book::default()), Condvar::new()));
static STARTS: AtomicU32 = AtomicU32::new(0);
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

/// Whether this start should go through the zygote, given the environment copied for it.
pub fn wanted(env: &[CString]) -> bool {
    let setting = env.iter().find_map(|e| e.to_bytes().strip_prefix(b"NS_ZYGOTE="));
    let n = STARTS.fetch_add(1, Ordering::Relaxed);
    match setting {
        Some(b"0") => false,
        Some(b"1") => true,
        _ => n >= 1,
    }
}

/// What the process is now, as far as a helper inherits it: everything but the umask, which
/// goes with each start. (umask, identity)
fn identity() -> Option<(u32, String)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mut umask = None;
    let mut id = String::with_capacity(512);
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Umask" => umask = u32::from_str_radix(value.trim(), 8).ok(),
            "Uid" | "Gid" | "Groups" | "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb"
            | "NoNewPrivs" | "Seccomp" | "Seccomp_filters" => {
                id.push_str(line);
                id.push('\n');
            }
            _ => {}
        }
    }
    id.push_str(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
    Some((umask?, id))
}

/// Fork a helper with `fds` (stdin, stdout, stderr, control) through the zygote.
pub fn start(helper: &str, fds: &[OwnedFd], env: &[CString]) -> Started {
    send_start(helper, fds, env).map_or(Started::NotForked, wait_forked)
}

/// Send the request: its token, or None if it could not be sent.
fn send_start(helper: &str, fds: &[OwnedFd], env: &[CString]) -> Option<u32> {
    let (umask, identity) = identity()?;
    let cwd = std::env::current_dir().ok()?.into_os_string().into_string().ok()?;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let (book, _) = &*BOOK;
    let mut slot = SLOT.lock().ok()?;
    if slot.as_ref().is_some_and(|z| {
        z.helper != helper
            || z.identity != identity
            || !z.alive.load(Ordering::Acquire)
            || dying(z.pid)
    }) {
        retire(slot.take());
    }
    if slot.is_none() {
        *slot = Some(spawn_zygote(helper, identity, env)?);
    }
    let z = slot.as_mut()?;
    let changed = z.env.as_slice() != env;
    let env_sent = changed.then(|| env.iter().map(|e| e.to_string_lossy().into_owned()).collect());
    let msg = serde_json::to_vec(&Request::Start { token, cwd, umask, env: env_sent }).ok()?;
    if msg.len() > MAX_MESSAGE {
        return None;
    }
    book.lock().ok()?.waiting.insert(token, z.sock.clone());
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    if ns_runtime::sys::send_fds(z.sock.as_raw_fd(), &raw, &msg).is_err() {
        book.lock().ok()?.waiting.remove(&token);
        retire(slot.take());
        return None;
    }
    if changed {
        z.env = env.to_vec();
    }
    Some(token)
}

fn wait_forked(token: u32) -> Started {
    let (book, cv) = &*BOOK;
    let Ok(mut b) = book.lock() else {
        return Started::Lost("the zygote's book is poisoned".into());
    };
    loop {
        if let Some(answer) = b.forked.remove(&token) {
            return answer;
        }
        match cv.wait(b) {
            Ok(next) => b = next,
            Err(_) => return Started::Lost("the zygote's book is poisoned".into()),
        }
    }
}

/// The exit status of `pid` if the zygote forked it (waiting for it to end), else None.
pub fn reap(pid: i32) -> Option<Status> {
    let (book, cv) = &*BOOK;
    let mut b = book.lock().ok()?;
    if !b.children.contains_key(&pid) {
        return None;
    }
    loop {
        if let Some(status) = b.exited.remove(&pid) {
            let sock = b.children.remove(&pid);
            drop(b);
            if let Some(sock) = sock {
                if let Ok(msg) = serde_json::to_vec(&Request::Release { pid }) {
                    send(&sock, &msg);
                }
            }
            return Some(status);
        }
        b = cv.wait(b).ok()?;
    }
}

fn send(sock: &OwnedFd, msg: &[u8]) -> bool {
    ns_runtime::sys::send_msg(sock.as_raw_fd(), msg).is_ok()
}

/// Whether the zygote `pid` (our child, not reaped before its reader saw it end) is dead or
/// dying: a SIGKILL pending, exiting (PF_EXITING), or a zombie. A start sent then would be
/// queued to a process that never reads it, and fail as lost (whether it forked the helper
/// unknown) instead of being spawned: a kill that returned before the start is seen here.
fn dying(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let (Ok(stat), Ok(status)) = (
        std::fs::read_to_string(format!("/proc/{pid}/stat")),
        std::fs::read_to_string(format!("/proc/{pid}/status")),
    ) else {
        return true;
    };
    // After the name in parentheses: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let exiting =
        fields.get(6).and_then(|f| f.parse::<u64>().ok()).is_none_or(|f| f & PF_EXITING != 0);
    if exiting || matches!(fields.first(), Some(&"Z" | &"X")) {
        return true;
    }
    let sigkill = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|line| match line.split_once(':') {
        Some(("SigPnd" | "ShdPnd", v)) => {
            u64::from_str_radix(v.trim(), 16).is_ok_and(|mask| mask & sigkill != 0)
        }
        _ => false,
    })
}

/// Fork nothing more with it: it ends once its helpers are released.
fn retire(z: Option<Zygote>) {
    if let Some(z) = z {
        if let Ok(msg) = serde_json::to_vec(&Request::Retire) {
            send(&z.sock, &msg);
        }
    }
}

fn spawn_zygote(helper: &str, identity: String, env: &[CString]) -> Option<Zygote> {
    let mut pair = [0; 2];
    // SAFETY: pair is a valid array of two ints.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return None;
    }
    // SAFETY: socketpair returned two fresh descriptors.
    let (ours, theirs) = unsafe {
        (
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pair[0]),
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pair[1]),
        )
    };
    let null = ns_runtime::sys::open("/dev/null", libc::O_RDWR).ok()?;
    let fds = [
        crate::high(null.as_raw_fd()).ok()?,
        crate::high(null.as_raw_fd()).ok()?,
        crate::high(2).ok()?,
        crate::high(theirs.as_raw_fd()).ok()?,
    ];
    drop(theirs);
    let pid = crate::spawn(helper, "zygote", &fds, env, true).ok()?;
    drop(fds);
    let sock = Arc::new(ours);
    let alive = Arc::new(AtomicBool::new(true));
    let (reader_sock, reader_alive) = (sock.clone(), alive.clone());
    let started = std::thread::Builder::new()
        .name("ns-zygote".into())
        .spawn(move || read_replies(pid, reader_sock, reader_alive));
    if started.is_err() {
        // Without its reader it is of no use: closing our end ends it; reap it.
        drop(sock);
        let _ = ns_runtime::sys::waitpid(pid, 0);
        return None;
    }
    Some(Zygote { pid, sock, helper: helper.to_owned(), identity, alive, env: env.to_vec() })
}

/// The reader thread of one zygote: its replies into the book, until it ends.
fn read_replies(pid: i32, sock: Arc<OwnedFd>, alive: Arc<AtomicBool>) {
    let (book, cv) = &*BOOK;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match ns_runtime::sys::recv_fds(sock.as_raw_fd(), &mut buf, 1) {
            Ok(Some((n, _))) => n,
            _ => break,
        };
        let Ok(reply) = serde_json::from_slice::<Reply>(&buf[..n]) else {
            continue;
        };
        let Ok(mut b) = book.lock() else { break };
        match reply {
            Reply::Forked { token, pid: Some(child), .. } => {
                b.waiting.remove(&token);
                b.children.insert(child, sock.clone());
                b.forked.insert(token, Started::Forked(child));
            }
            Reply::Forked { token, .. } => {
                b.waiting.remove(&token);
                b.forked.insert(token, Started::NotForked);
            }
            Reply::Exited { pid: child, code, signal } => {
                b.exited.insert(child, (code, signal));
            }
        }
        drop(b);
        cv.notify_all();
    }
    alive.store(false, Ordering::Release);
    if let Ok(mut b) = book.lock() {
        // Starts it never answered fail (it may have forked them); helpers it forked are
        // orphans now, whose status nobody will learn.
        let lost: Vec<u32> =
            b.waiting.iter().filter(|(_, s)| Arc::ptr_eq(s, &sock)).map(|(t, _)| *t).collect();
        for token in lost {
            b.waiting.remove(&token);
            b.forked.insert(
                token,
                Started::Lost(format!("EPIPE: the zygote (pid {pid}) ended before it answered")),
            );
        }
        let orphans: Vec<i32> =
            b.children.iter().filter(|(_, s)| Arc::ptr_eq(s, &sock)).map(|(p, _)| *p).collect();
        for child in orphans {
            b.exited.entry(child).or_insert((None, None));
        }
    }
    cv.notify_all();
    let _ = ns_runtime::sys::waitpid(pid, 0);
}
