//! The hub's access-token decoder ([`Keyring::verify`]): PASETO v4.local, key id in the footer,
//! claims checked and read. The key is fixed, so inputs replay the same way everywhere.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pasetors::keys::SymmetricKey;
use pasetors::version4::{LocalToken, V4};
use uplink_hub::token::{Keyring, TokenSubject};

const KEY: [u8; 32] = *b"uplink fuzz: a fixed v4.local k!";
const ISSUER: &str = "https://hub.example";
const AUDIENCE: &str = "https://hub.example/api";

fn keyring() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| {
        let record = Keyring::key_record(&KEY, 0).expect("a 32-byte key");
        Keyring::from_records(&[record], ISSUER, AUDIENCE).expect("one key")
    })
}

/// The footer the hub writes: the key id, as JSON.
fn footer() -> String {
    format!(r#"{{"kid":"{}"}}"#, keyring().current_key_id())
}

/// `access_token`. First byte picks what the rest is:
///
/// - 0: a token as presented (any text): it never verifies, nobody holds our key;
/// - 1: a token's parts (`v4.local.` + base64 of the body + `.` + base64 of the footer, cut at
///   the first NUL): it never verifies either, whatever the footer says;
/// - 2: a payload encrypted with our key and footer: only claims the hub could have written
///   verify, and what verifies is exactly what the payload says;
/// - 3: subject fields (cut at NULs): issued, then verified, they come back unchanged (an
///   empty user id is refused at issue, as PASETO requires).
pub fn access_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keyring();
    match mode % 4 {
        0 => {
            let presented = String::from_utf8_lossy(rest);
            assert!(keys.verify(&presented).is_err(), "a forged token verified");
        }
        1 => {
            let (body, foot) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b""[..]),
            };
            let mut token = format!("v4.local.{}", URL_SAFE_NO_PAD.encode(body));
            if !foot.is_empty() {
                token.push('.');
                token.push_str(&URL_SAFE_NO_PAD.encode(foot));
            }
            assert!(keys.verify(&token).is_err(), "a forged token verified");
        }
        2 => {
            if rest.is_empty() {
                return;
            }
            let key = SymmetricKey::<V4>::from(&KEY).expect("a 32-byte key");
            let token =
                LocalToken::encrypt(&key, rest, Some(footer().as_bytes()), None).expect("encrypt");
            if let Ok(claims) = keys.verify(&token) {
                let payload: serde_json::Value =
                    serde_json::from_slice(rest).expect("verified claims are JSON");
                let text = |name: &str| payload[name].as_str().expect("a text claim").to_owned();
                assert_eq!(text("iss"), ISSUER);
                assert_eq!(text("aud"), AUDIENCE);
                assert_eq!(claims.user_id, text("sub"));
                assert_eq!(claims.app_id, text("client_id"));
                assert_eq!(claims.family_id, text("fam"));
                assert_eq!(claims.token_id, text("jti"));
                assert!(claims.expires_at > chrono::Utc::now().timestamp());
                let scope = text("scope");
                let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
                assert_eq!(claims.scopes, scopes);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let mut fields = text.split('\0');
            let mut next = || fields.next().unwrap_or_default().to_owned();
            let subject = TokenSubject {
                user_id: next(),
                app_id: next(),
                family_id: next(),
                scopes: next()
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            // PASETO refuses an empty subject; the hub's user ids never are.
            let Ok(token) = keys.issue(&subject, 3600) else {
                assert!(subject.user_id.is_empty(), "issue refused {subject:?}");
                return;
            };
            let claims = keys
                .verify(token.expose())
                .expect("a token the hub issued verifies");
            assert_eq!(claims.user_id, subject.user_id);
            assert_eq!(claims.app_id, subject.app_id);
            assert_eq!(claims.family_id, subject.family_id);
            assert_eq!(claims.scopes, subject.scopes);
        }
    }
}
