//! Reverse names (RFC 1035 §3.5, RFC 3596 §2.5): `2.100.51.198.in-addr.arpa` is 198.51.100.2,
//! `2.0.0.0.….a.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa` is 2001:db8:a::2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::Name;

/// The address a PTR question asks about, when its name is a complete reverse name.
pub fn address_of_reverse_name(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.labels().collect();
    let n = labels.len();
    let tail = |a: &[u8], b: &[u8]| {
        n >= 2 && labels[n - 2].eq_ignore_ascii_case(a) && labels[n - 1].eq_ignore_ascii_case(b)
    };
    if tail(b"in-addr", b"arpa") && n == 6 {
        let mut octets = [0u8; 4];
        for (i, label) in labels[..4].iter().enumerate() {
            let ok = !label.is_empty() && label.len() <= 3 && label.iter().all(u8::is_ascii_digit);
            let text = std::str::from_utf8(label).ok().filter(|_| ok)?;
            octets[3 - i] = text.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if tail(b"ip6", b"arpa") && n == 34 {
        let mut value: u128 = 0;
        for label in labels[..32].iter().rev() {
            let [digit] = label else { return None };
            value = (value << 4) | (*digit as char).to_digit(16)? as u128;
        }
        return Some(IpAddr::V6(Ipv6Addr::from(value)));
    }
    None
}

/// The reverse name of `addr`.
pub fn reverse_name(addr: IpAddr) -> Name {
    let text = match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xF, byte >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    };
    // Digits and dots only: always a valid name.
    Name::from_ascii(&text).unwrap_or_else(|_| Name::root())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_of_both_families_round_trip() {
        for a in ["198.51.100.2", "0.0.0.0", "255.255.255.255", "2001:db8:a::2", "::1", "fe80::1:2"]
        {
            let addr: IpAddr = a.parse().unwrap();
            assert_eq!(address_of_reverse_name(&reverse_name(addr)), Some(addr), "{a}");
        }
        assert_eq!(
            reverse_name("198.51.100.2".parse().unwrap()).to_string(),
            "2.100.51.198.in-addr.arpa."
        );
        assert_eq!(
            reverse_name("2001:db8::2".parse().unwrap()).to_string(),
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn partial_or_odd_reverse_names_are_no_address() {
        for n in [
            "100.51.198.in-addr.arpa",
            "256.100.51.198.in-addr.arpa",
            "x.100.51.198.in-addr.arpa",
            "1.2.100.51.198.in-addr.arpa",
            "0002.100.51.198.in-addr.arpa",
            "2.100.51.198.in-addr.arpa.example",
            "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            "0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        ] {
            assert_eq!(address_of_reverse_name(&Name::from_ascii(n).unwrap()), None, "{n}");
        }
        let upper = Name::from_ascii("2.100.51.198.IN-ADDR.ARPA").unwrap();
        assert_eq!(address_of_reverse_name(&upper), Some("198.51.100.2".parse().unwrap()));
    }
}
