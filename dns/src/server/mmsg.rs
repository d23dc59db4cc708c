//! Batched UDP I/O: on Linux `recvmmsg(2)` takes every waiting datagram (up to [`BATCH`]) in
//! one system call once the first has arrived, and `sendmmsg(2)` sends their answers in one;
//! elsewhere one datagram at a time. Neither std, socket2 nor rustix offers `recvmmsg`, hence
//! the `libc` calls.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams taken per system call.
pub(super) const BATCH: usize = 16;
/// Room for any UDP datagram (pages never written are never resident).
const SLOT: usize = 65535;

/// Received datagrams and the answers queued for them.
pub(super) struct Batch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
    received: usize,
    /// Queued answers: the datagram they answer and where their octets are in `out`.
    queued: Vec<(usize, usize, usize)>,
    out: Vec<u8>,
    #[cfg(target_os = "linux")]
    raw: linux::Raw,
}

impl Batch {
    /// Empty buffers for [`BATCH`] datagrams.
    pub(super) fn new() -> Batch {
        Batch {
            bufs: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            addrs: [None; BATCH],
            received: 0,
            queued: Vec::with_capacity(BATCH),
            out: Vec::with_capacity(BATCH * 512),
            #[cfg(target_os = "linux")]
            raw: linux::Raw::new(),
        }
    }

    /// Datagram `i` and its sender, unless the sender's address family is unknown.
    pub(super) fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let addr = (*self.addrs.get(i)?)?;
        Some((&self.bufs[i * SLOT..i * SLOT + self.lens[i]], addr))
    }

    /// Queues `message` as an answer to datagram `i`.
    pub(super) fn queue(&mut self, i: usize, message: &[u8]) {
        let start = self.out.len();
        self.out.extend_from_slice(message);
        self.queued.push((i, start, message.len()));
    }

    /// Waits for at least one datagram (or the socket's read timeout) and takes those waiting.
    pub(super) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        self.queued.clear();
        self.out.clear();
        #[cfg(target_os = "linux")]
        {
            self.received =
                self.raw
                    .recv(socket, &mut self.bufs, &mut self.lens, &mut self.addrs)?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, src) = socket.recv_from(&mut self.bufs[..SLOT])?;
            self.lens[0] = len;
            self.addrs[0] = Some(src);
            self.received = 1;
        }
        Ok(self.received)
    }

    /// Sends the queued answers; a failed one is logged and skipped.
    pub(super) fn send(&mut self, socket: &UdpSocket) {
        #[cfg(target_os = "linux")]
        {
            self.raw.send(socket, &self.out, &self.queued);
        }
        #[cfg(not(target_os = "linux"))]
        for &(i, start, len) in &self.queued {
            if let Some(dst) = self.addrs[i] {
                if let Err(e) = socket.send_to(&self.out[start..start + len], dst) {
                    tracing::debug!(%dst, "UDP send: {e}");
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use super::{BATCH, SLOT};

    /// The system call structures, kept between calls.
    pub(super) struct Raw {
        names: [libc::sockaddr_storage; BATCH],
        iovs: [libc::iovec; BATCH],
        hdrs: [libc::mmsghdr; BATCH],
    }

    impl Raw {
        pub(super) fn new() -> Raw {
            // SAFETY: all-zero is a valid value of these plain C structures.
            unsafe { zeroed() }
        }

        /// `recvmmsg` into `bufs` (BATCH slots of SLOT octets).
        pub(super) fn recv(
            &mut self,
            socket: &UdpSocket,
            bufs: &mut [u8],
            lens: &mut [usize; BATCH],
            addrs: &mut [Option<SocketAddr>; BATCH],
        ) -> io::Result<usize> {
            for (i, slot) in bufs.chunks_exact_mut(SLOT).take(BATCH).enumerate() {
                self.iovs[i] = libc::iovec {
                    iov_base: slot.as_mut_ptr().cast(),
                    iov_len: SLOT,
                };
                // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
                let mut hdr: libc::msghdr = unsafe { zeroed() };
                hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                hdr.msg_iov = &mut self.iovs[i];
                hdr.msg_iovlen = 1;
                self.hdrs[i] = libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                };
            }
            // SAFETY: the headers point at BATCH live iovecs over `bufs` (checked to hold
            // BATCH slots by `chunks_exact_mut`) and at `names`; the kernel writes within them.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            for i in 0..n {
                lens[i] = self.hdrs[i].msg_len as usize;
                addrs[i] = socket_addr(&self.names[i]);
            }
            Ok(n)
        }

        /// `sendmmsg` of `queued` answers (datagram answered, start and length in `out`) to the
        /// senders of the datagrams last received.
        pub(super) fn send(
            &mut self,
            socket: &UdpSocket,
            out: &[u8],
            queued: &[(usize, usize, usize)],
        ) {
            for chunk in queued.chunks(BATCH) {
                for (k, &(i, start, len)) in chunk.iter().enumerate() {
                    let message = &out[start..start + len];
                    self.iovs[k] = libc::iovec {
                        iov_base: message.as_ptr() as *mut libc::c_void,
                        iov_len: len,
                    };
                    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
                    let mut hdr: libc::msghdr = unsafe { zeroed() };
                    hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                    hdr.msg_namelen = name_len(&self.names[i]);
                    hdr.msg_iov = &mut self.iovs[k];
                    hdr.msg_iovlen = 1;
                    self.hdrs[k] = libc::mmsghdr {
                        msg_hdr: hdr,
                        msg_len: 0,
                    };
                }
                let mut sent = 0;
                while sent < chunk.len() {
                    // SAFETY: headers `sent..chunk.len()` point at live iovecs over `out` and
                    // at the senders' addresses; the kernel only reads them.
                    let n = unsafe {
                        libc::sendmmsg(
                            socket.as_raw_fd(),
                            self.hdrs[sent..].as_mut_ptr(),
                            (chunk.len() - sent) as libc::c_uint,
                            0,
                        )
                    };
                    if n <= 0 {
                        let e = io::Error::last_os_error();
                        tracing::debug!("UDP send: {e}");
                        sent += 1;
                    } else {
                        sent += n as usize;
                    }
                }
            }
        }
    }

    /// The length of a received address, by its family.
    fn name_len(name: &libc::sockaddr_storage) -> libc::socklen_t {
        match i32::from(name.ss_family) {
            libc::AF_INET6 => size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            _ => size_of::<libc::sockaddr_in>() as libc::socklen_t,
        }
    }

    /// A received IPv4 or IPv6 address.
    fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(name.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let v4 = unsafe {
                    &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::new(
                    Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).into(),
                    u16::from_be(v4.sin_port),
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let v6 = unsafe {
                    &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}
