//! TSIG (RFC 8945): verifying signed requests and signing responses, including the chained
//! MACs of a multi-message zone transfer (RFC 8945 §5.3.1).

use std::collections::{HashMap, HashSet};

use base64::Engine;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{make_tsig_record, TsigAlgorithm, TsigError, TSIG};
use hickory_proto::rr::{Name, Record, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::acl::key_name;
use crate::config::TsigKeyConfig;
use crate::error::DnsError;
use crate::tsig_wire::{canonical, WireProblem};

/// Allowed clock difference between signer and verifier, in seconds (RFC 8945 §10: 300).
const FUDGE: u16 = 300;

/// The configured TSIG keys, by lower-case key name.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: HashMap<Name, TSigner>,
}

impl Keyring {
    /// Decodes the configured keys; bad algorithms, secrets or duplicate names are errors.
    pub fn from_config(keys: &[TsigKeyConfig]) -> Result<Self, DnsError> {
        let mut ring = Keyring::default();
        for key in keys {
            let name = key_name(&key.name)?;
            let algorithm = match key.algorithm.to_ascii_lowercase().as_str() {
                "hmac-sha256" => TsigAlgorithm::HmacSha256,
                "hmac-sha384" => TsigAlgorithm::HmacSha384,
                "hmac-sha512" => TsigAlgorithm::HmacSha512,
                other => {
                    return Err(DnsError::config(format!(
                        "tsig_key `{}`: unsupported algorithm `{other}` (use hmac-sha256, hmac-sha384 or hmac-sha512)",
                        key.name
                    )))
                }
            };
            let secret = base64::engine::general_purpose::STANDARD
                .decode(key.secret.trim())
                .map_err(|e| {
                    DnsError::config(format!(
                        "tsig_key `{}`: the secret must be base64 (RFC 4648 §4, as printed by \
                         `tsig-keygen` or `openssl rand -base64 32`): {}",
                        key.name,
                        base64_problem(&e)
                    ))
                })?;
            if secret.is_empty() {
                return Err(DnsError::config(format!(
                    "tsig_key `{}`: empty secret",
                    key.name
                )));
            }
            let signer = TSigner::new(secret, algorithm, name.clone(), FUDGE)
                .map_err(|e| DnsError::config(format!("tsig_key `{}`: {e}", key.name)))?;
            if ring.keys.insert(name, signer).is_some() {
                return Err(DnsError::config(format!(
                    "duplicate tsig_key `{}`",
                    key.name
                )));
            }
        }
        Ok(ring)
    }

    /// The key names, for compiling `key:NAME` match elements.
    pub fn names(&self) -> HashSet<Name> {
        self.keys.keys().cloned().collect()
    }

    /// Verifies the TSIG of a request (RFC 8945 §5.2), if it has one.
    pub fn verify(&self, packet: &[u8], request: &Message, now: u64) -> Verification {
        let Some(tsig) = request.signature() else {
            return Verification::Unsigned;
        };
        let name = tsig.name.to_lowercase();
        let Some(signer) = self.keys.get(&name) else {
            return Verification::Failed(TSigResponseContext::unknown_key(request.id, now, name));
        };
        let packet = match canonical(packet) {
            Ok(packet) => packet,
            Err(WireProblem::Malformed) => return Verification::Malformed,
            Err(WireProblem::Tampered) => {
                return Verification::Failed(TSigResponseContext::bad_signature(
                    request.id,
                    now,
                    signer.clone(),
                ))
            }
        };
        match signer.verify_message_byte(&packet, None, true) {
            Err(_) => Verification::Failed(TSigResponseContext::bad_signature(
                request.id,
                now,
                signer.clone(),
            )),
            Ok((mac, _, valid)) if now < valid.start || now > valid.end => {
                Verification::Failed(TSigResponseContext::new(
                    request.id,
                    now,
                    signer.clone(),
                    mac,
                    Some(TsigError::BadTime),
                ))
            }
            Ok((mac, _, _)) => Verification::Signed(Signed {
                signer: signer.clone(),
                request_mac: mac,
                request_id: request.id,
            }),
        }
    }
}

/// Outcome of checking a request's TSIG.
pub enum Verification {
    /// No TSIG record.
    Unsigned,
    /// A valid signature by a known key.
    Signed(Signed),
    /// Unknown key, bad MAC or bad time: answer NOTAUTH with this (RFC 8945 §5.2).
    Failed(TSigResponseContext),
    /// A TSIG record with a wrong class, TTL or RDLENGTH: answer FORMERR (RFC 8945 §5.2).
    Malformed,
}

/// A validly signed request, whose responses must be signed with the same key.
#[derive(Clone)]
pub struct Signed {
    signer: TSigner,
    request_mac: Vec<u8>,
    request_id: u16,
}

impl Signed {
    /// The key's name.
    pub fn key(&self) -> &Name {
        self.signer.signer_name()
    }

    /// Signs a sequence of response messages: the first over the request MAC and all TSIG
    /// variables, the following ones over the previous MAC and the timers only (RFC 8945 §5.3.1).
    pub fn sign_all(&self, messages: &mut [Vec<u8>], now: u64) -> Result<(), String> {
        let mut chain = self.chain(now);
        messages.iter_mut().try_for_each(|m| chain.sign(m))
    }

    /// A signer for a sequence of response messages built one at a time (a zone transfer).
    pub fn chain(&self, now: u64) -> TsigChain<'_> {
        TsigChain {
            signed: self,
            now,
            previous: None,
        }
    }

    fn subsequent(
        &self,
        previous_mac: &[u8],
        message: &[u8],
        now: u64,
    ) -> Result<Record<TSIG>, String> {
        let mut tbs = Vec::with_capacity(message.len() + previous_mac.len() + 10);
        let len = u16::try_from(previous_mac.len()).map_err(|_| "MAC too long".to_owned())?;
        tbs.extend_from_slice(&len.to_be_bytes());
        tbs.extend_from_slice(previous_mac);
        tbs.extend_from_slice(message);
        tbs.extend_from_slice(&now.to_be_bytes()[2..]);
        tbs.extend_from_slice(&self.signer.fudge().to_be_bytes());
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        Ok(make_tsig_record(
            self.signer.signer_name().clone(),
            TSIG::new(
                self.signer.algorithm().clone(),
                now,
                self.signer.fudge(),
                mac,
                self.request_id,
                None,
                Vec::new(),
            ),
        ))
    }
}

/// The TSIG state of a sequence of response messages: the MAC of the last one signed.
pub struct TsigChain<'a> {
    signed: &'a Signed,
    now: u64,
    previous: Option<Vec<u8>>,
}

impl TsigChain<'_> {
    /// Signs the next message of the sequence (see [`Signed::sign_all`]).
    pub fn sign(&mut self, message: &mut Vec<u8>) -> Result<(), String> {
        let signed = self.signed;
        let record = match &self.previous {
            None => TSigResponseContext::new(
                signed.request_id,
                self.now,
                signed.signer.clone(),
                signed.request_mac.clone(),
                None,
            )
            .sign(message)
            .map_err(|e| e.to_string())?,
            Some(prev) => Box::new(signed.subsequent(prev, message, self.now)?),
        };
        self.previous = Some(record.data.mac.clone());
        append_tsig(message, &record)
    }
}

/// Signs an error response to a request whose TSIG failed (unsigned for BADKEY/BADSIG).
pub fn sign_failure(context: TSigResponseContext, message: &mut Vec<u8>) -> Result<(), String> {
    let record = context.sign(message).map_err(|e| e.to_string())?;
    append_tsig(message, &record)
}

/// Appends a TSIG record to an encoded message and bumps ARCOUNT (it must be last, RFC 8945 §4.2).
fn append_tsig(message: &mut Vec<u8>, record: &Record<TSIG>) -> Result<(), String> {
    if message.len() < 12 {
        return Err("message shorter than a header".into());
    }
    let count = u16::from_be_bytes([message[10], message[11]])
        .checked_add(1)
        .ok_or_else(|| "too many additional records".to_owned())?;
    message[10..12].copy_from_slice(&count.to_be_bytes());
    let end = u32::try_from(message.len()).map_err(|_| "message too long".to_owned())?;
    let mut encoder = BinEncoder::with_offset(message, end);
    record.emit(&mut encoder).map_err(|e| e.to_string())
}

/// What is wrong with a base64 text, in words (the decoder's own message counts symbols and
/// offsets from zero: "Invalid symbol 32, offset 3.").
fn base64_problem(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, byte) => format!(
            "{:?} at position {} is not a base64 character",
            char::from(*byte),
            offset + 1
        ),
        base64::DecodeError::InvalidLength(len) => {
            format!("{len} base64 characters cannot be a whole number of bytes")
        }
        base64::DecodeError::InvalidLastSymbol(offset, byte) => format!(
            "the last character {:?} (position {}) has bits set that belong to no byte",
            char::from(*byte),
            offset + 1
        ),
        base64::DecodeError::InvalidPadding => "the `=` padding is wrong".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    fn ring() -> Keyring {
        Keyring::from_config(&[TsigKeyConfig {
            name: "xfr-key".into(),
            algorithm: "hmac-sha256".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ=".into(),
        }])
        .expect("ring")
    }

    fn signed_query(key: &TSigner, now: u64) -> (Vec<u8>, Message) {
        let mut msg = Message::query();
        msg.add_query(Query::query(
            Name::from_ascii("example.test.").expect("n"),
            RecordType::AXFR,
        ));
        msg.finalize(key, now).expect("sign");
        let bytes = msg.to_vec().expect("encode");
        let parsed = Message::from_vec(&bytes).expect("decode");
        (bytes, parsed)
    }

    #[test]
    fn bad_secrets_are_explained() {
        let err = |secret: &str| {
            Keyring::from_config(&[TsigKeyConfig {
                name: "xfr-key".into(),
                algorithm: "hmac-sha256".into(),
                secret: secret.into(),
            }])
            .err()
            .expect("refused")
            .to_string()
        };
        let e = err("abc def=");
        assert!(
            e.contains("tsig_key `xfr-key`: the secret must be base64")
                && e.contains("' ' at position 4 is not a base64 character"),
            "{e}"
        );
        assert!(
            err("abcde").contains("5 base64 characters"),
            "{}",
            err("abcde")
        );
        assert!(err("").contains("empty secret"));
    }

    #[test]
    fn verifies_and_chains_responses() {
        let ring = ring();
        let client = ring.keys.values().next().expect("key").clone();
        let (bytes, msg) = signed_query(&client, 1_700_000_000);
        let Verification::Signed(signed) = ring.verify(&bytes, &msg, 1_700_000_100) else {
            panic!("should verify");
        };
        let mut response = Message::response(msg.id, msg.op_code);
        response.add_query(msg.queries[0].clone());
        let one = response.to_vec().expect("encode");
        let mut messages = vec![one.clone(), one.clone(), one];
        signed.sign_all(&mut messages, 1_700_000_100).expect("sign");
        // Check the chain the way a client does.
        let (_, _, _) = client
            .verify_message_byte(
                &messages[0],
                Some(&msg.signature().expect("sig").data.mac),
                true,
            )
            .expect("first verifies");
        let first_mac = Message::from_vec(&messages[0])
            .expect("decode")
            .signature()
            .expect("sig")
            .data
            .mac
            .clone();
        client
            .verify_message_byte(&messages[1], Some(&first_mac), false)
            .expect("second verifies");
    }

    #[test]
    fn rejects_bad_time_key_and_signature() {
        let ring = ring();
        let client = ring.keys.values().next().expect("key").clone();
        let (bytes, msg) = signed_query(&client, 1_700_000_000);
        assert!(matches!(
            ring.verify(&bytes, &msg, 1_700_001_000),
            Verification::Failed(_)
        ));
        let mut tampered = bytes.clone();
        tampered[2] ^= 0x01;
        let parsed = Message::from_vec(&tampered).expect("decode");
        assert!(matches!(
            ring.verify(&tampered, &parsed, 1_700_000_000),
            Verification::Failed(_)
        ));
        let other = TSigner::new(
            b"x".to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("other.").expect("n"),
            300,
        )
        .expect("signer");
        let (bytes, msg) = signed_query(&other, 1_700_000_000);
        assert!(matches!(
            ring.verify(&bytes, &msg, 1_700_000_000),
            Verification::Failed(_)
        ));
        assert!(Keyring::from_config(&[TsigKeyConfig {
            name: "k".into(),
            algorithm: "hmac-md5".into(),
            secret: "eA==".into()
        }])
        .is_err());
    }

    #[test]
    fn raw_tsig_fields_are_checked_like_bind() {
        let ring = ring();
        let client = ring.keys.values().next().expect("key").clone();
        let (bytes, _) = signed_query(&client, 1_700_000_000);
        let alg = b"\x0bhmac-sha256";
        let at = bytes
            .windows(alg.len())
            .rposition(|w| w == alg)
            .expect("algorithm name in the TSIG RDATA");
        let verify = |packet: &[u8]| {
            let parsed = Message::from_vec(packet).expect("decode");
            ring.verify(packet, &parsed, 1_700_000_000)
        };
        assert!(matches!(verify(&bytes), Verification::Signed(_)));
        let mut upper = bytes.clone();
        upper[at..at + alg.len()].make_ascii_uppercase();
        assert!(
            matches!(verify(&upper), Verification::Signed(_)),
            "HMAC-SHA256 is the same algorithm (RFC 8945 §6)"
        );
        let mut ttl = bytes.clone();
        ttl[at - 4] ^= 0x01;
        assert!(
            matches!(verify(&ttl), Verification::Malformed),
            "TTL must be 0"
        );
        let mut rdlength = bytes.clone();
        rdlength[at - 1] ^= 0x01;
        assert!(matches!(
            ring.verify(
                &rdlength,
                &Message::from_vec(&bytes).expect("decode"),
                1_700_000_000
            ),
            Verification::Malformed
        ));
        let mut z = bytes.clone();
        z[3] |= 0x40;
        assert!(
            matches!(verify(&z), Verification::Failed(_)),
            "Z bit not covered"
        );
    }
}
