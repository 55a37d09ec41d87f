//! Real processes in real namespaces: the helper binary is started as @ns/core starts it (the
//! request on fd 3), and what the container prints is compared with the host.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

struct Outcome {
    events: Vec<Value>,
    stdout: String,
}

fn run_helper(request: Value) -> Outcome {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ns-oci"));
    cmd.arg("init").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ns-oci");
    drop(theirs);
    let mut w = ours.try_clone().unwrap();
    w.write_all(format!("{request}\n").as_bytes()).unwrap();
    let events: Vec<Value> =
        BufReader::new(ours).lines().map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.wait().unwrap();
    Outcome { events, stdout }
}

fn userns_blocked() -> Option<String> {
    // SAFETY: plain syscall.
    ns_runtime::host::userns_block(unsafe { libc::geteuid() })
        .map(|b| format!("{} ({})", b.reason, b.fix))
}

fn sandbox_config(args: &[&str]) -> Value {
    // SAFETY: plain syscalls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let size = if uid == 0 { 65536 } else { 1 };
    let mut mounts: Vec<Value> = ["/usr", "/bin", "/lib", "/lib64", "/sbin"]
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| json!({"destination": p, "type": "bind", "source": p, "options": ["rbind", "ro"]}))
        .collect();
    mounts.push(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    mounts.push(
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    );
    json!({
        "ociVersion": "1.2.0",
        "process": {"args": args, "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "hostname": "box",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "uidMappings": [{"containerID": 0, "hostID": uid, "size": size}],
            "gidMappings": [{"containerID": 0, "hostID": gid, "size": size}]
        }
    })
}

#[test]
fn the_command_is_pid_1_of_its_own_namespaces_with_its_own_hostname_and_only_lo() {
    if let Some(why) = userns_blocked() {
        eprintln!("SKIP: {why}");
        return;
    }
    let out = run_helper(json!({
        "config": sandbox_config(&["sh", "-c", "echo $$; hostname; id -u; ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1"]),
        "init": false
    }));
    assert_eq!(out.events.first().unwrap()["event"], "started");
    let host_pid = out.events[0]["pid"].as_i64().unwrap();
    assert!(host_pid > 1);
    assert_eq!(
        out.events.last().unwrap(),
        &json!({"event": "exited", "exitCode": 0, "signal": null, "oomKilled": false})
    );
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(&lines[..3], &["1", "box", "0"]);
    assert_eq!(&lines[3..], &["lo"]);
    assert_ne!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(), "box");
}

#[test]
fn with_init_the_command_is_pid_2_and_its_signal_is_reported() {
    if let Some(why) = userns_blocked() {
        eprintln!("SKIP: {why}");
        return;
    }
    let out = run_helper(
        json!({"config": sandbox_config(&["sh", "-c", "echo $$; kill -TERM $$"]), "init": true}),
    );
    assert_eq!(out.stdout, "2\n");
    assert_eq!(
        out.events.last().unwrap(),
        &json!({"event": "exited", "exitCode": null, "signal": 15, "oomKilled": false})
    );
}

#[test]
fn a_refused_mount_reports_its_step_path_and_errno() {
    if let Some(why) = userns_blocked() {
        eprintln!("SKIP: {why}");
        return;
    }
    let mut config = sandbox_config(&["true"]);
    config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["size=nonsense"]}));
    let out = run_helper(json!({"config": config}));
    let err = &out.events.iter().find(|e| e["event"] == "error").expect("an error event")["error"];
    assert_eq!(err["step"], "mount tmpfs on");
    assert_eq!(err["path"], "/bad");
    assert_eq!(err["code"], "EINVAL");
    assert_eq!(err["errno"], libc::EINVAL);
    assert_eq!(out.events.last().unwrap()["exitCode"], 125);
}

#[test]
fn invalid_config_is_refused_before_any_namespace_is_made() {
    let mut config = sandbox_config(&["true"]);
    config["linux"]["uidMappings"][0]["size"] = json!(0);
    let out = run_helper(json!({"config": config}));
    assert_eq!(out.events[0]["error"]["message"], "linux.uidMappings[0].size: must be > 0");
    let out = run_helper(json!({"config": {"process": {"args": [], "cwd": "/"}}}));
    assert_eq!(out.events[0]["error"]["message"], "process.args: must not be empty");
    assert_eq!(out.events.len(), 2);
}
