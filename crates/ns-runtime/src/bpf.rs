//! eBPF, as much as the device controller of cgroup v2 needs: instructions built by hand (the
//! few `devices::DeviceState::program` uses), a `BPF_PROG_TYPE_CGROUP_DEVICE` program loaded
//! with bpf(2), attached to a cgroup (several may be, each must allow), and the programs of a
//! cgroup listed and detached (to replace them on update).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::Errno;

/// One instruction: `struct bpf_insn` (opcode, destination and source registers in a byte,
/// offset, immediate).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;
pub const R6: u8 = 6;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// dst = *(u32 *)(src + off)  (BPF_LDX | BPF_MEM | BPF_W)
pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x61, dst, src, off, 0)
}
/// dst = (u32) src  (BPF_ALU | BPF_MOV | BPF_X)
pub const fn mov32_reg(dst: u8, src: u8) -> Insn {
    insn(0xbc, dst, src, 0, 0)
}
/// dst = imm  (BPF_ALU64 | BPF_MOV | BPF_K)
pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}
/// dst = (u32) (dst & imm)  (BPF_ALU | BPF_AND | BPF_K)
pub const fn and32_imm(dst: u8, imm: i32) -> Insn {
    insn(0x54, dst, 0, 0, imm)
}
/// dst = (u32) dst >> imm  (BPF_ALU | BPF_RSH | BPF_K)
pub const fn rsh32_imm(dst: u8, imm: i32) -> Insn {
    insn(0x74, dst, 0, 0, imm)
}
/// if dst != imm: skip `off` instructions  (BPF_JMP | BPF_JNE | BPF_K)
pub const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}
/// if dst == imm: skip `off` instructions  (BPF_JMP | BPF_JEQ | BPF_K)
pub const fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x15, dst, 0, off, imm)
}
/// return r0  (BPF_JMP | BPF_EXIT)
pub const fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, each of which must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, as a block of words: each command reads the fields it knows at their
/// offsets, and the rest must be zero.
#[repr(C, align(8))]
struct Attr([u32; 30]);

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> Result<libc::c_long, Errno> {
    // SAFETY: attr is a valid, zero-padded bpf_attr of the size we pass.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut Attr, std::mem::size_of::<Attr>() as u32)
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn set_u64(a: &mut Attr, word: usize, v: u64) {
    a.0[word] = v as u32;
    a.0[word + 1] = (v >> 32) as u32;
}

/// Load a device program. The verifier's log comes back with its refusal, if it refuses.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, (Errno, String)> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut a = Attr([0; 30]);
    a.0[0] = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.0[1] = insns.len() as u32;
    set_u64(&mut a, 2, insns.as_ptr() as u64);
    set_u64(&mut a, 4, license.as_ptr() as u64);
    // log_level, log_size, log_buf: the verifier says why only when asked (then it is slower):
    // first without, then again with the log if it refused.
    match bpf(BPF_PROG_LOAD, &mut a) {
        // SAFETY: the kernel returned a fresh descriptor.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e) if e.0 == libc::EACCES || e.0 == libc::EINVAL => {
            a.0[6] = 1;
            a.0[7] = log.len() as u32;
            set_u64(&mut a, 8, log.as_mut_ptr() as u64);
            let _ = bpf(BPF_PROG_LOAD, &mut a);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_owned()))
        }
        Err(e) => Err((e, String::new())),
    }
}

/// Attach `prog` to the cgroup open at `cgroup` (beside any already there).
pub fn attach_device_program(cgroup: RawFd, prog: &OwnedFd) -> Result<(), Errno> {
    let mut a = Attr([0; 30]);
    a.0[0] = cgroup as u32;
    a.0[1] = prog.as_raw_fd() as u32;
    a.0[2] = BPF_CGROUP_DEVICE;
    a.0[3] = BPF_F_ALLOW_MULTI;
    bpf(BPF_PROG_ATTACH, &mut a).map(|_| ())
}

/// The ids of the device programs attached to the cgroup open at `cgroup` (its own, not its
/// ancestors').
pub fn attached_device_programs(cgroup: RawFd) -> Result<Vec<u32>, Errno> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr([0; 30]);
    a.0[0] = cgroup as u32;
    a.0[1] = BPF_CGROUP_DEVICE;
    set_u64(&mut a, 4, ids.as_mut_ptr() as u64);
    a.0[6] = ids.len() as u32;
    bpf(BPF_PROG_QUERY, &mut a)?;
    ids.truncate(a.0[6] as usize);
    Ok(ids)
}

/// Detach the program `id` from the cgroup open at `cgroup`.
pub fn detach_device_program(cgroup: RawFd, id: u32) -> Result<(), Errno> {
    let mut a = Attr([0; 30]);
    a.0[0] = id;
    // SAFETY: the kernel returns a fresh descriptor for the program.
    let prog = unsafe { OwnedFd::from_raw_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut a)? as RawFd) };
    let mut a = Attr([0; 30]);
    a.0[0] = cgroup as u32;
    a.0[1] = prog.as_raw_fd() as u32;
    a.0[2] = BPF_CGROUP_DEVICE;
    bpf(BPF_PROG_DETACH, &mut a).map(|_| ())
}
