//! Amazon MSK's IAM login through librdkafka's OAUTHBEARER: the token is a SigV4-presigned
//! `kafka-cluster:Connect` request for the cluster's region, base64url-encoded, as AWS's own
//! signer libraries make it (aws-msk-iam-sasl-signer-python/-go/-js). The broker checks the
//! signature with the IAM identity of the access key and the cluster's policies; the token lives
//! 15 minutes and librdkafka asks for a new one before that.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use object_store::aws::{AwsCredential, AwsCredentialProvider};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The value of `[kafka] sasl.mechanism` that selects this login (the Java client's name for it).
pub const MECHANISM: &str = "AWS_MSK_IAM";

/// How long a token is valid (what AWS's signers use).
const EXPIRES_SECONDS: i64 = 900;

/// Named in the token's `User-Agent` parameter, which MSK logs.
const USER_AGENT: &str = concat!("kafkatos3/", env!("CARGO_PKG_VERSION"));

/// How long asking the credential chain (e.g. the instance metadata service) may take.
const CREDENTIALS_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(
        "[kafka] sasl.mechanism = AWS_MSK_IAM needs the cluster's region: kafka_bootstrap is not an MSK address \
         (…kafka.<region>.amazonaws.com) and neither AWS_REGION nor AWS_DEFAULT_REGION is set"
    )]
    NoRegion,
    #[error("Amazon MSK IAM login: {0}")]
    Credentials(#[from] object_store::Error),
    #[error("Amazon MSK IAM login: the AWS credential chain did not answer within {} s", CREDENTIALS_WITHIN.as_secs())]
    CredentialsTimeout,
}

/// The cluster's region: from an MSK broker address (`b-1.c.x.c2.kafka.eu-west-1.amazonaws.com`,
/// `boot-x.c1.kafka-serverless.eu-west-1.amazonaws.com`), else the environment's.
pub fn region(bootstrap: &str) -> Result<String, IamError> {
    let from_host = bootstrap.split(',').find_map(|server| {
        let host = server.trim().rsplit_once(':').map_or(server.trim(), |(host, _)| host);
        let labels: Vec<&str> = host.split('.').collect();
        let at = labels.iter().position(|l| *l == "kafka" || *l == "kafka-serverless")?;
        (labels.len() == at + 4 && labels[at + 2] == "amazonaws" && labels[at + 3] == "com")
            .then(|| labels[at + 1].to_string())
    });
    from_host
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
        .ok_or(IamError::NoRegion)
}

/// Makes tokens for one region with the process's AWS credential chain.
#[derive(Debug)]
pub struct Signer {
    region: String,
    credentials: AwsCredentialProvider,
}

/// A token and what librdkafka is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    /// The access key id: librdkafka wants a principal name; the broker takes the identity from
    /// the signature.
    pub principal: String,
    pub expires_ms: i64,
}

impl Signer {
    /// One signer per region for the whole process, so that every client shares the chain's
    /// cached credentials.
    pub fn for_region(region: &str) -> Result<Arc<Signer>, IamError> {
        static SIGNERS: Mutex<Vec<Arc<Signer>>> = Mutex::new(Vec::new());
        let mut signers = SIGNERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signer) = signers.iter().find(|s| s.region == region) {
            return Ok(signer.clone());
        }
        let credentials = crate::archive::store::aws_credentials(region)?;
        let signer = Arc::new(Signer { region: region.to_string(), credentials });
        signers.push(signer.clone());
        Ok(signer)
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// A fresh token. Called on a client's polling thread, which may be inside an async
    /// runtime or not: the credential chain is asked on a runtime of its own.
    pub fn token(&self) -> Result<Token, IamError> {
        let credentials = self.credentials.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(credentials.get_credential().await);
        });
        let credential = rx.recv_timeout(CREDENTIALS_WITHIN).map_err(|_| IamError::CredentialsTimeout)??;
        Ok(presign(&credential, &self.region, OffsetDateTime::now_utc(), USER_AGENT))
    }
}

/// The credential chain's runtime: object_store's HTTP clients (instance metadata, STS) keep
/// their connections on the runtime that made them, so it lives as long as the process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kafkatos3-aws-credentials")
            .enable_all()
            .build()
            .expect("a one-thread runtime for the AWS credential chain")
    })
}

/// The presigned `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`
/// (SigV4 query authentication, service `kafka-cluster`, empty payload), base64url without
/// padding. The parameters are in the order AWS's signers write them; `User-Agent` is added after
/// signing, as theirs do.
pub fn presign(credential: &AwsCredential, region: &str, at: OffsetDateTime, user_agent: &str) -> Token {
    let host = format!("kafka.{region}.amazonaws.com");
    let date_time = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let date = &date_time[..8];
    let scope = format!("{date}/{region}/kafka-cluster/aws4_request");
    let mut params = vec![
        ("Action", "kafka-cluster:Connect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", credential.key_id)),
        ("X-Amz-Date", date_time.clone()),
        ("X-Amz-Expires", EXPIRES_SECONDS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &credential.token {
        params.push(("X-Amz-Security-Token", token.clone()));
    }
    let query = |params: &[(&str, String)]| -> String {
        params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
    };
    let mut sorted = params.clone();
    sorted.sort();
    let empty_payload = hex(&Sha256::digest(b""));
    let canonical = format!("GET\n/\n{}\nhost:{host}\n\nhost\n{empty_payload}", query(&sorted));
    let to_sign = format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{}", credential.secret_key).as_bytes(), date.as_bytes());
    for part in [region, "kafka-cluster", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    params.push(("X-Amz-Signature", hex(&hmac(&key, to_sign.as_bytes()))));
    params.push(("User-Agent", user_agent.to_string()));
    let url = format!("https://{host}/?{}", query(&params));
    Token {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        principal: credential.key_id.clone(),
        expires_ms: (at.unix_timestamp() + EXPIRES_SECONDS) * 1000,
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SigV4's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(token: Option<&str>) -> AwsCredential {
        AwsCredential {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            token: token.map(str::to_string),
        }
    }

    /// Known answers from AWS's own signer, aws-msk-iam-sasl-signer-python 1.0.2 (botocore's
    /// SigV4QueryAuth), with its clock fixed at 2026-12-07T01:30:00Z and these credentials.
    #[test]
    fn tokens_are_byte_for_byte_what_the_aws_signer_makes() {
        let at = time::macros::datetime!(2026-12-07 01:30:00 UTC);
        let agent = "aws-msk-iam-sasl-signer-python/1.0.2";
        let plain = presign(&credential(None), "eu-west-1", at, agent);
        assert_eq!(
            plain.token,
            "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI2MTIwNyUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTIwN1QwMTMwMDBaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9NmJlYWRiZWMyODVmODE2NTBiYjI5OTE1MjUxYmI2MDYwZDBiZjgzYmFjZWNiZDdkNzAzMzQwOTkyNTUzMTMzZSZVc2VyLUFnZW50PWF3cy1tc2staWFtLXNhc2wtc2lnbmVyLXB5dGhvbiUyRjEuMC4y"
        );
        assert_eq!(plain.expires_ms, 1_796_607_900_000);
        assert_eq!(plain.principal, "AKIDEXAMPLE");
        // A session token (a role's credentials) is signed too; the signature changes.
        let session = presign(&credential(Some("session/token+=")), "eu-west-1", at, agent);
        assert_eq!(
            session.token,
            "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI2MTIwNyUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTIwN1QwMTMwMDBaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TZWN1cml0eS1Ub2tlbj1zZXNzaW9uJTJGdG9rZW4lMkIlM0QmWC1BbXotU2lnbmF0dXJlPTkxMDk4MjMxYzQ4MWE0ODI1NTY5NTM0Y2IwODAzMTA3MmNjZTczMDU0ZWNjZmIwNDc1ZmQyOWZmZWQzZDYyYjEmVXNlci1BZ2VudD1hd3MtbXNrLWlhbS1zYXNsLXNpZ25lci1weXRob24lMkYxLjAuMg"
        );
    }

    #[test]
    fn the_region_comes_from_an_msk_address_before_the_environment() {
        let provisioned = "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098";
        assert_eq!(region(provisioned).unwrap(), "eu-west-1");
        let serverless = "boot-abcd.c1.kafka-serverless.ap-southeast-2.amazonaws.com:9098";
        assert_eq!(region(serverless).unwrap(), "ap-southeast-2");
        // Not an MSK address (a proxy, a VPC endpoint by IP): the environment decides, and
        // without one the error names what to set.
        match (std::env::var("AWS_REGION"), std::env::var("AWS_DEFAULT_REGION")) {
            (Err(_), Err(_)) => {
                let error = region("10.0.0.7:9098").unwrap_err().to_string();
                assert!(error.contains("AWS_REGION") && error.contains("kafka_bootstrap"), "{error}");
            }
            _ => assert!(region("10.0.0.7:9098").is_ok()),
        }
    }
}
