//! The process connector's wire format (`linux/connector.h`, `linux/cn_proc.h`), read with
//! libc because no maintained crate covers this one socket.
//!
//! [`parse`] reads datagrams straight from the kernel and is pure, so it is fuzzed: the
//! `netlink_parse` target in `fuzz/` compiles this file as it is (it needs only libc).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;
/// `what`, `cpu` and `timestamp_ns` precede the event data.
const EVENT_HDR: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    Exec {
        pid: u32,
    },
    /// `timestamp_ns` is the kernel's `CLOCK_MONOTONIC` when the process exited.
    Exit {
        pid: u32,
        timestamp_ns: u64,
    },
}

pub struct Socket {
    fd: OwnedFd,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Socket {
    /// Opens the connector and asks for process events. Fails where the connector is not
    /// there (another network namespace) or the agent may not listen to it.
    pub fn subscribe() -> io::Result<Self> {
        // SAFETY: plain socket calls on a descriptor this function owns; every buffer
        // passed lives across the call and its length is given.
        unsafe {
            let fd = check(libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            ))?;
            let fd = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            addr.nl_groups = CN_IDX_PROC;
            check(libc::bind(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_nl>() as u32,
            ))?;
            // A large receive buffer absorbs bursts of process starts.
            let size: libc::c_int = 4 << 20;
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as u32,
            );
            // Wake up now and then to hand over gathered events and to notice the agent
            // stopping.
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            check(libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const _ as *const libc::c_void,
                size_of::<libc::timeval>() as u32,
            ))?;
            if let Err(e) = attach_filter(fd.as_raw_fd()) {
                // Only a cost: user space skips what the filter would have dropped.
                tracing::debug!(error = %e, "no in-kernel filter for process events");
            }
            let message = listen_message();
            let sent = libc::send(
                fd.as_raw_fd(),
                message.as_ptr() as *const libc::c_void,
                message.len(),
                0,
            );
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self { fd })
        }
    }

    /// Blocks for the next datagram (at most a tenth of a second), then takes whatever else is queued.
    pub fn receive(&self) -> io::Result<Vec<ProcEvent>> {
        let mut events = Vec::new();
        let mut buf = [0u8; 4096];
        let mut flags = 0;
        for _ in 0..256 {
            // SAFETY: `buf` outlives the call and its length is passed.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    flags,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if flags != 0 && e.kind() == io::ErrorKind::WouldBlock {
                    break;
                }
                return Err(e);
            }
            events.extend(parse(&buf[..n as usize]));
            flags = libc::MSG_DONTWAIT;
        }
        Ok(events)
    }
}

/// A classic BPF program that keeps only exec events and exits of whole processes, so the
/// agent is not woken for forks or for every thread that ends. Loads are big-endian, so the
/// constants are the host-order fields' bytes read as big-endian.
fn attach_filter(fd: libc::c_int) -> io::Result<()> {
    // linux/bpf_common.h: class | size | mode, or class | op | source.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const ST: u16 = 0x02; // BPF_ST
    const LDX_MEM: u16 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JEQ_X: u16 = 0x1d; // BPF_JMP | BPF_JEQ | BPF_X
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let be = |v: u32| u32::from_be_bytes(v.to_ne_bytes());
    let what = (NLMSG_HDR + CN_MSG) as u32;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let program = [
        op(LD_W_ABS, 0, 0, what),
        op(JEQ_K, 6, 0, be(PROC_EVENT_EXEC)),
        op(JEQ_K, 0, 6, be(PROC_EVENT_EXIT)),
        op(LD_W_ABS, 0, 0, what + EVENT_HDR as u32), // pid
        op(ST, 0, 0, 0),
        op(LDX_MEM, 0, 0, 0),
        op(LD_W_ABS, 0, 0, what + EVENT_HDR as u32 + 4), // tgid
        op(JEQ_X, 0, 1, 0),
        op(RET_K, 0, 0, u32::MAX),
        op(RET_K, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` and the program it points to outlive the call; the kernel copies them.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog as *const _ as *const libc::c_void,
            size_of::<libc::sock_fprog>() as u32,
        )
    })
    .map(|_| ())
}

fn listen_message() -> Vec<u8> {
    let payload = PROC_CN_MCAST_LISTEN.to_ne_bytes();
    let total = NLMSG_HDR + CN_MSG + payload.len();
    let mut m = Vec::with_capacity(total);
    m.extend((total as u32).to_ne_bytes());
    m.extend((libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend(0u16.to_ne_bytes()); // flags
    m.extend(0u32.to_ne_bytes()); // seq
    m.extend(0u32.to_ne_bytes()); // port: the kernel fills it in
    m.extend(CN_IDX_PROC.to_ne_bytes());
    m.extend(CN_VAL_PROC.to_ne_bytes());
    m.extend(0u32.to_ne_bytes()); // seq
    m.extend(0u32.to_ne_bytes()); // ack
    m.extend((payload.len() as u16).to_ne_bytes());
    m.extend(0u16.to_ne_bytes()); // flags
    m.extend(payload);
    m
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// The exec and exit events of whole processes in one datagram; thread events (pid ≠ tgid)
/// and other kinds are skipped.
pub fn parse(datagram: &[u8]) -> Vec<ProcEvent> {
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(datagram, at).map(|l| l as usize) {
        if len < NLMSG_HDR || at + len > datagram.len() {
            break;
        }
        let event = at + NLMSG_HDR + CN_MSG;
        let data = event + EVENT_HDR;
        if let (Some(what), Some(timestamp_ns), Some(pid), Some(tgid)) = (
            u32_at(datagram, event),
            u64_at(datagram, event + 8),
            u32_at(datagram, data),
            u32_at(datagram, data + 4),
        ) {
            match what {
                PROC_EVENT_EXEC if pid == tgid => events.push(ProcEvent::Exec { pid }),
                PROC_EVENT_EXIT if pid == tgid => {
                    events.push(ProcEvent::Exit { pid, timestamp_ns })
                }
                _ => {}
            }
        }
        at += (len + 3) & !3;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, pid: u32, tgid: u32) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR + CN_MSG + EVENT_HDR + 16];
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        let e = NLMSG_HDR + CN_MSG;
        m[e..e + 4].copy_from_slice(&what.to_ne_bytes());
        m[e + 8..e + 16].copy_from_slice(&(1000 + u64::from(pid)).to_ne_bytes());
        m[e + EVENT_HDR..e + EVENT_HDR + 4].copy_from_slice(&pid.to_ne_bytes());
        m[e + EVENT_HDR + 4..e + EVENT_HDR + 8].copy_from_slice(&tgid.to_ne_bytes());
        m
    }

    #[test]
    fn exec_and_exit_of_processes_are_read_and_threads_skipped() {
        let mut datagram = message(PROC_EVENT_EXEC, 10, 10);
        datagram.extend(message(PROC_EVENT_EXIT, 11, 10));
        datagram.extend(message(PROC_EVENT_EXIT, 12, 12));
        datagram.extend(message(0x1, 13, 13));
        assert_eq!(
            parse(&datagram),
            [
                ProcEvent::Exec { pid: 10 },
                ProcEvent::Exit {
                    pid: 12,
                    timestamp_ns: 1012
                }
            ]
        );
        assert!(
            parse(&datagram[..10]).is_empty(),
            "a short datagram is ignored"
        );
    }

    #[test]
    fn the_listen_message_has_its_length_first() {
        let m = listen_message();
        assert_eq!(u32_at(&m, 0), Some(m.len() as u32));
        assert_eq!(m.len(), NLMSG_HDR + CN_MSG + 4);
    }
}
