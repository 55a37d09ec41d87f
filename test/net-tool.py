# Probes for the network tests, run on the simulated host, in the upstream namespace and in
# containers (the host's /usr/bin/python3 is in the default sandbox):
#   serve tcp|udp PORT [BIND]   answer each connection (datagram) with the peer's address
#   probe tcp|udp HOST PORT     print what the server answered; exit 1 (and say why) if none
#   wait tcp HOST PORT          probe until a server answers (10 s at most): readiness only
#   dns udp PORT IP             a DNS server answering every A question with IP (the "outside")
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve(proto, port, bind):
    fam = family(bind)
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((bind, port))
        s.listen(64)
        while True:
            c, peer = s.accept()
            c.sendall(peer[0].removeprefix("::ffff:").encode())
            c.close()
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    while True:
        _, peer = s.recvfrom(512)
        s.sendto(peer[0].removeprefix("::ffff:").encode(), peer)


def probe(proto, host, port, timeout=2.0):
    fam = family(host)
    if proto == "tcp":
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            return s.recv(256).decode()
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout / 3)
        for _ in range(3):
            s.sendto(b"ping", (host, port))
            try:
                return s.recv(256).decode()
            except socket.timeout:
                continue
        raise TimeoutError("no answer")


def dns(port, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    ip = socket.inet_aton(answer)
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        # The question ends at its name's zero byte, then type and class.
        end = q.index(0, 12) + 5
        qtype = q[end - 4 : end - 2]
        head = q[:2] + b"\x81\x80" + q[4:6] + (b"\x00\x01" if qtype == b"\x00\x01" else b"\x00\x00")
        rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ip if qtype == b"\x00\x01" else b""
        s.sendto(head + b"\x00\x00\x00\x00" + q[12:end] + rr, peer)


def main():
    mode, proto = sys.argv[1], sys.argv[2]
    if mode == "dns":
        dns(int(sys.argv[3]), sys.argv[4])
    if mode == "serve":
        serve(proto, int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "::")
    host, port = sys.argv[3], int(sys.argv[4])
    if mode == "probe":
        try:
            print(probe(proto, host, port))
        except Exception as e:
            print(f"ERR {type(e).__name__}: {e}")
            sys.exit(1)
        return
    deadline = time.time() + 10
    while True:
        try:
            print(probe(proto, host, port, 0.5))
            return
        except Exception as e:
            if time.time() > deadline:
                print(f"ERR {type(e).__name__}: {e}")
                sys.exit(1)
            time.sleep(0.05)


main()
