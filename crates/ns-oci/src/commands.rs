//! The commands, as runc names them. Errors go to stderr and, with `--log`, to the log file
//! (`--log-format json`: one `{"level":"error","msg":…}` object per line, as engines read it).

use std::io::Write;
use std::path::{Path, PathBuf};

use ns_runtime::helper;
use ns_runtime::lifecycle;
use ns_runtime::proto::Event;
use ns_runtime::request::{CreateRequest, RunRequest};
use ns_runtime::spec::Spec;
use ns_runtime::state::{self, ContainerDir, Record};
use ns_runtime::SetupError;

use crate::args::{parse, FlagSpec, Parsed};

const GLOBAL: FlagSpec = &[
    ("root", None, true),
    ("log", None, true),
    ("log-format", None, true),
    ("debug", None, false),
    ("systemd-cgroup", None, false),
    ("rootless", None, true),
    ("criu", None, true),
    ("version", Some('v'), false),
    ("help", Some('h'), false),
];
const CREATE: FlagSpec = &[
    ("bundle", Some('b'), true),
    ("pid-file", None, true),
    ("console-socket", None, true),
    ("no-pivot", None, false),
    ("no-new-keyring", None, false),
    ("preserve-fds", None, true),
    ("detach", Some('d'), false),
    ("keep", None, false),
];
const EXEC: FlagSpec = &[
    ("process", Some('p'), true),
    ("detach", Some('d'), false),
    ("pid-file", None, true),
    ("console-socket", None, true),
    ("tty", Some('t'), false),
    ("env", Some('e'), true),
    ("cwd", None, true),
    ("user", Some('u'), true),
    ("preserve-fds", None, true),
    ("no-new-privs", None, false),
];
const KILL: FlagSpec = &[("all", Some('a'), false)];
const PS: FlagSpec = &[("format", Some('f'), true)];
const DELETE: FlagSpec = &[("force", Some('f'), false)];
const LIST: FlagSpec = &[("format", Some('f'), true), ("quiet", Some('q'), false)];
const SPEC: FlagSpec = &[("rootless", None, false), ("bundle", Some('b'), true)];
const NONE: FlagSpec = &[];

const USAGE: &str =
    "usage: ns-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND [flags] ID
commands:
  create [--bundle B] [--pid-file F] [--preserve-fds N] ID   set a container up; it waits for start
  start ID                                                   start a created container
  state ID                                                   print its state (JSON)
  kill [--all] ID [SIGNAL]                                   signal it (default SIGTERM)
  delete [--force] ID                                        remove it and all it took
  list [--format table|json] [--quiet]                      list containers
  ps [--format table|json] ID                                its processes (host PIDs)
  run [--bundle B] [--pid-file F] [--detach] ID              create and start, in the foreground
  exec [--process P.json | ID CMD…] [-e K=V] [--cwd D] [-u U:G] [--detach] [--pid-file F]
                                                             run another process in a container
  spec [--rootless] [--bundle B]                             write a default config.json
  features                                                   what this runtime supports (JSON)";

struct Ctx {
    root: PathBuf,
    log: Option<PathBuf>,
    json_log: bool,
}

impl Ctx {
    fn error(&self, e: &SetupError) {
        let mut msg = e.message.clone();
        if let Some(h) = &e.hint {
            msg.push_str(&format!(" ({h})"));
        }
        eprintln!("ns-oci: {msg}");
        if let Some(log) = &self.log {
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
                let time = state::now_rfc3339();
                let _ = if self.json_log {
                    writeln!(
                        f,
                        "{}",
                        serde_json::json!({ "level": "error", "msg": msg, "time": time })
                    )
                } else {
                    writeln!(f, "time={time:?} level=error msg={msg:?}")
                };
            }
        }
    }
}

fn usage_error(msg: impl AsRef<str>) -> SetupError {
    SetupError::config("usage", msg.as_ref())
}

pub fn main(argv: &[String]) -> i32 {
    if argv.first().map(String::as_str) == Some("init") {
        return helper::helper_main(3);
    }
    if argv.first().map(String::as_str) == Some("zygote") {
        return ns_runtime::zygote::zygote_main(3);
    }
    let (global, at) = match parse(argv, GLOBAL, true) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ns-oci: {e}\n{USAGE}");
            return 1;
        }
    };
    if global.has("version") {
        println!("ns-oci version {}", ns_runtime::VERSION);
        println!("commit: {}", option_env!("NS_COMMIT").unwrap_or("unknown"));
        println!("spec: {}", ns_runtime::SPEC_VERSION);
        return 0;
    }
    let ctx = Ctx {
        root: global.value("root").map(PathBuf::from).unwrap_or_else(state::default_root),
        log: global.value("log").map(PathBuf::from),
        json_log: global.value("log-format") == Some("json"),
    };
    let Some(cmd) = argv.get(at) else {
        if global.has("help") {
            println!("{USAGE}");
            return 0;
        }
        eprintln!("{USAGE}");
        return 1;
    };
    let rest = &argv[at + 1..];
    match dispatch(&ctx, cmd, rest) {
        Ok(code) => code,
        Err(e) => {
            ctx.error(&e);
            1
        }
    }
}

fn flags(rest: &[String], spec: FlagSpec) -> Result<Parsed, SetupError> {
    parse(rest, spec, false).map(|(p, _)| p).map_err(usage_error)
}

fn one_id(p: &Parsed, cmd: &str) -> Result<String, SetupError> {
    p.positionals.first().cloned().ok_or_else(|| usage_error(format!("{cmd} needs a container id")))
}

fn dispatch(ctx: &Ctx, cmd: &str, rest: &[String]) -> Result<i32, SetupError> {
    match cmd {
        "create" => {
            let p = flags(rest, CREATE)?;
            create(ctx, &p, &one_id(&p, "create")?, false)?;
            Ok(0)
        }
        "run" => {
            let p = flags(rest, CREATE)?;
            let id = one_id(&p, "run")?;
            if p.has("detach") {
                create(ctx, &p, &id, false)?;
                lifecycle::start(&ctx.root, &id)?;
                Ok(0)
            } else {
                run_foreground(ctx, &p, &id)
            }
        }
        "exec" => {
            // Flags come before the id; what follows the id is the command, flags and all.
            let (mut p, at) = parse(rest, EXEC, true).map_err(usage_error)?;
            p.positionals = rest[at..].to_vec();
            exec(ctx, &p)
        }
        "start" => {
            let p = flags(rest, NONE)?;
            lifecycle::start(&ctx.root, &one_id(&p, "start")?)?;
            Ok(0)
        }
        "state" => {
            let p = flags(rest, NONE)?;
            let v = lifecycle::state(&ctx.root, &one_id(&p, "state")?)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(0)
        }
        "kill" => {
            let p = flags(rest, KILL)?;
            let id = one_id(&p, "kill")?;
            let sig = lifecycle::parse_signal(
                p.positionals.get(1).map(String::as_str).unwrap_or("TERM"),
            )?;
            lifecycle::kill(&ctx.root, &id, sig, p.has("all"))?;
            Ok(0)
        }
        "delete" => {
            let p = flags(rest, DELETE)?;
            lifecycle::delete(&ctx.root, &one_id(&p, "delete")?, p.has("force"))?;
            Ok(0)
        }
        "ps" => {
            let p = flags(rest, PS)?;
            let pids = lifecycle::pids(&ctx.root, &one_id(&p, "ps")?)?;
            if p.value("format") == Some("json") {
                println!("{}", serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into()));
            } else {
                println!("{:<8} CMD", "PID");
                for pid in pids {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmd: Vec<String> = cmd
                        .split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    println!("{pid:<8} {}", cmd.join(" "));
                }
            }
            Ok(0)
        }
        "list" | "ls" => {
            let p = flags(rest, LIST)?;
            list(ctx, &p);
            Ok(0)
        }
        "spec" => {
            let p = flags(rest, SPEC)?;
            write_spec(&p)?;
            Ok(0)
        }
        "features" => {
            println!("{}", serde_json::to_string_pretty(&features()).unwrap_or_default());
            Ok(0)
        }
        other => Err(usage_error(format!("unknown command {other:?}; see ns-oci --help"))),
    }
}

/// Read `config.json` of the bundle into a request.
fn request(p: &Parsed) -> Result<RunRequest, SetupError> {
    let bundle = p.value("bundle").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let bundle = std::fs::canonicalize(&bundle).map_err(|e| {
        SetupError::sys(
            "open bundle",
            Some(&bundle.display().to_string()),
            ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT)),
        )
    })?;
    let cfg = bundle.join("config.json");
    let data = std::fs::read(&cfg).map_err(|e| {
        SetupError::sys(
            "read",
            Some(&cfg.display().to_string()),
            ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT)),
        )
    })?;
    let config: Spec = serde_json::from_slice(&data).map_err(|e| {
        SetupError::config("config.json", format!("is not a valid runtime spec: {e}"))
    })?;
    if !config.oci_version.starts_with("1.") {
        return Err(SetupError::config(
            "ociVersion",
            format!("{:?} is not a 1.x version", config.oci_version),
        ));
    }
    let preserve_fds = match p.value("preserve-fds") {
        None => 0,
        Some(v) => {
            v.parse().map_err(|_| SetupError::config("--preserve-fds", "must be a number"))?
        }
    };
    Ok(RunRequest {
        config,
        bundle: Some(bundle.display().to_string()),
        init: false,
        die_with_parent: false,
        create: None,
        exec: None,
        preserve_fds,
    })
}

fn create(ctx: &Ctx, p: &Parsed, id: &str, monitor: bool) -> Result<(), SetupError> {
    let mut req = request(p)?;
    let cr = CreateRequest {
        id: id.to_owned(),
        root: ctx.root.display().to_string(),
        pid_file: p.value("pid-file").map(absolute),
        monitor,
        remove_on_exit: false,
        console_socket: p.value("console-socket").map(absolute),
    };
    req.create = Some(cr.clone());
    helper::create(&req, &cr, &mut |e: &Event| {
        if let Event::Warning { message } = e {
            eprintln!("ns-oci: warning: {message}");
        }
    })
}

fn absolute(p: &str) -> String {
    std::path::absolute(p).map(|p| p.display().to_string()).unwrap_or_else(|_| p.to_owned())
}

/// `run` without `--detach`: the container runs attached to this process, which forwards
/// signals and exits with its status; the state folder exists while it runs.
fn run_foreground(ctx: &Ctx, p: &Parsed, id: &str) -> Result<i32, SetupError> {
    if p.value("console-socket").is_some() {
        return Err(SetupError::config(
            "--console-socket",
            "is for create, and run --detach; a foreground run uses this terminal",
        ));
    }
    let req = request(p)?;
    let dir = ContainerDir::create(&ctx.root, id)?;
    let pid_file = p.value("pid-file").map(absolute);
    let bundle = req.bundle.clone().unwrap_or_default();
    let annotations = req.config.annotations.clone();
    let mut failure = None;
    let result = helper::foreground(&req, &mut |e: &Event| match e {
        Event::Started { pid } => {
            let rec = Record {
                oci_version: ns_runtime::SPEC_VERSION.into(),
                id: id.to_owned(),
                pid: *pid,
                start_time: state::process_start_time(*pid).unwrap_or(0),
                bundle: bundle.clone(),
                created: state::now_rfc3339(),
                annotations: annotations.clone(),
                // SAFETY: plain syscall.
                owner: unsafe { libc::geteuid() },
                monitor_pid: None,
                cgroup: None,
            };
            let _ = dir.write_record(&rec);
            if let Some(pf) = &pid_file {
                let _ = state::write_atomic(Path::new(pf), pid.to_string().as_bytes());
            }
        }
        Event::Error { error } => failure = Some(error.clone()),
        Event::Warning { message } => eprintln!("ns-oci: warning: {message}"),
        _ => {}
    });
    let _ = std::fs::remove_dir_all(&dir.path);
    let (code, signal) = result?;
    if let Some(e) = failure {
        ctx.error(&e);
    }
    Ok(code.unwrap_or_else(|| 128 + signal.unwrap_or(0)))
}

/// `exec`: the process comes from `--process` (a runtime-spec `process` object) or from the
/// container's config with the command line's arguments, environment, cwd and user on top.
fn exec(ctx: &Ctx, p: &Parsed) -> Result<i32, SetupError> {
    let id = one_id(p, "exec")?;
    let dir = ContainerDir::open(&ctx.root, &id)?;
    let mut process: ns_runtime::spec::Process = match p.value("process") {
        Some(file) => {
            let data = std::fs::read(file).map_err(|e| {
                SetupError::sys(
                    "read",
                    Some(file),
                    ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT)),
                )
            })?;
            serde_json::from_slice(&data).map_err(|e| {
                SetupError::config("--process", format!("is not a valid process: {e}"))
            })?
        }
        None => {
            let config: Spec = std::fs::read(dir.file("config.json"))
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or_default();
            let mut pr = config.process.unwrap_or_default();
            pr.args = p.positionals[1..].to_vec();
            pr.terminal = p.has("tty");
            pr
        }
    };
    if process.args.is_empty() {
        return Err(usage_error("exec needs a command (after the id) or --process"));
    }
    for e in p.all("env") {
        let key = e.split('=').next().unwrap_or_default();
        process.env.retain(|x| x.split('=').next() != Some(key));
        process.env.push(e.clone());
    }
    if let Some(cwd) = p.value("cwd") {
        process.cwd = cwd.to_owned();
    }
    if let Some(u) = p.value("user") {
        let (uid, gid) = u.split_once(':').unwrap_or((u, u));
        process.user.uid =
            uid.parse().map_err(|_| SetupError::config("--user", "must be UID[:GID] (numbers)"))?;
        process.user.gid =
            gid.parse().map_err(|_| SetupError::config("--user", "must be UID[:GID] (numbers)"))?;
    }
    if p.has("no-new-privs") {
        process.no_new_privileges = true;
    }
    let req = ns_runtime::request::ExecRequest {
        id,
        root: ctx.root.display().to_string(),
        process,
        detach: p.has("detach"),
        pid_file: p.value("pid-file").map(absolute),
        console_socket: p.value("console-socket").map(absolute),
    };
    let mut failure = None;
    let (code, signal) = ns_runtime::exec::exec(&req, &mut |e: &Event| {
        if let Event::Error { error } = e {
            failure = Some(error.clone());
        }
    })?;
    if let Some(e) = failure {
        ctx.error(&e);
        return Ok(code.unwrap_or(1));
    }
    Ok(code.unwrap_or_else(|| signal.map_or(0, |s| 128 + s)))
}

fn list(ctx: &Ctx, p: &Parsed) {
    let all = lifecycle::list(&ctx.root);
    if p.has("quiet") {
        for v in all {
            println!("{}", v.id);
        }
    } else if p.value("format") == Some("json") {
        println!("{}", serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()));
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for v in all {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                v.id,
                v.pid.unwrap_or(0),
                v.status.as_str(),
                v.bundle,
                v.created,
                v.owner
            );
        }
    }
}

/// `spec`: a default config.json for a bundle whose root filesystem is `rootfs/`.
fn write_spec(p: &Parsed) -> Result<(), SetupError> {
    let dir = PathBuf::from(p.value("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(SetupError::config(
            "config.json",
            format!("{} already exists", path.display()),
        ));
    }
    let rootless = p.has("rootless");
    // SAFETY: plain syscalls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount", "cgroup"];
    if rootless {
        namespaces.push("user");
    }
    let mut linux = serde_json::json!({
        "namespaces": namespaces.iter().map(|n| serde_json::json!({ "type": n })).collect::<Vec<_>>(),
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if rootless {
        linux["uidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    }
    let mut pts = vec!["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
    if !rootless {
        pts.push("gid=5");
    }
    let spec = serde_json::json!({
        "ociVersion": ns_runtime::SPEC_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }]
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "ns",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": pts },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": if rootless { "none" } else { "sysfs" }, "source": if rootless { "/sys" } else { "sysfs" },
              "options": if rootless { vec!["rbind", "nosuid", "noexec", "nodev", "ro"] } else { vec!["nosuid", "noexec", "nodev", "ro"] } }
        ],
        "linux": linux
    });
    state::write_atomic(&path, serde_json::to_string_pretty(&spec).unwrap_or_default().as_bytes())
}

fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": ns_runtime::SPEC_VERSION,
        "hooks": [],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "noatime", "nodev",
                         "nodiratime", "noexec", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
                         "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
                         "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                             "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
                             "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
                             "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
                             "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
                             "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
                             "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"],
            "cgroup": { "v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "io.ns.version": ns_runtime::VERSION
        }
    })
}
