//! What every librdkafka client of ours shares beyond its settings (`config::kafka`): how it is
//! created, and the SASL/OAUTHBEARER tokens librdkafka asks the application for - Amazon MSK's
//! IAM login ([`msk_iam`]) among them.
//!
//! rdkafka hands a token refresh to a client's context only if the context's type says so (a
//! constant), and then librdkafka's own unsecured-JWT builder runs after it too. So every context
//! of ours takes the refresh and answers it with [`Tokens`]: a signed MSK IAM token, an unsecured
//! JWT as librdkafka would make it, or an error naming the setting that is missing.

pub mod fetch_queue;
pub mod msk_iam;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::OAuthToken;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientConfig, ClientContext};

/// Where a client's OAUTHBEARER tokens come from.
#[derive(Debug, Clone, Default)]
pub enum Tokens {
    /// Not an OAUTHBEARER login, or one with no token source (refused when asked).
    #[default]
    None,
    /// `enable.sasl.oauthbearer.unsecure.jwt` (development and tests).
    Unsecured,
    MskIam(Arc<msk_iam::Signer>),
}

impl Tokens {
    /// The answer to librdkafka's token refresh; `config` is `sasl.oauthbearer.config`.
    pub fn generate(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match self {
            Tokens::MskIam(signer) => {
                let token = signer.token()?;
                Ok(OAuthToken { token: token.token, principal_name: token.principal, lifetime_ms: token.expires_ms })
            }
            Tokens::Unsecured => Ok(unsecured_jwt(config.unwrap_or_default(), time::OffsetDateTime::now_utc())?),
            Tokens::None => Err("[kafka] sasl.mechanism = OAUTHBEARER has no token source: this build of \
                 librdkafka cannot fetch OIDC tokens; use AWS_MSK_IAM for Amazon MSK, or \
                 enable.sasl.oauthbearer.unsecure.jwt for a development cluster"
                .into()),
        }
    }
}

/// The token-refresh items of a `ClientContext` impl whose type has a `tokens: Tokens` field: the
/// refresh is taken (see the module doc) and answered with those tokens.
macro_rules! answer_token_refreshes {
    () => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            config: Option<&str>,
        ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
            self.tokens.generate(config)
        }
    };
}
pub(crate) use answer_token_refreshes;

/// `config` as librdkafka takes it, and where its tokens come from: `sasl.mechanism =
/// AWS_MSK_IAM` becomes OAUTHBEARER signed with this process's AWS credentials.
pub fn prepare(config: &ClientConfig) -> Result<(ClientConfig, Tokens), KafkaError> {
    let mechanism = config.get("sasl.mechanism").or_else(|| config.get("sasl.mechanisms")).unwrap_or_default();
    if mechanism.eq_ignore_ascii_case(msk_iam::MECHANISM) {
        let bootstrap = config.get("bootstrap.servers").or_else(|| config.get("metadata.broker.list"));
        let signer = msk_iam::region(bootstrap.unwrap_or_default())
            .and_then(|region| msk_iam::Signer::for_region(&region))
            .map_err(|error| KafkaError::ClientCreation(error.to_string()))?;
        let mut config = config.clone();
        config.remove("sasl.mechanisms");
        config.set("sasl.mechanism", "OAUTHBEARER");
        return Ok((config, Tokens::MskIam(signer)));
    }
    let unsecured = config.get("enable.sasl.oauthbearer.unsecure.jwt").is_some_and(|v| v == "true");
    Ok((config.clone(), if unsecured { Tokens::Unsecured } else { Tokens::None }))
}

/// A client of type `T` with the context `context` makes from the client's tokens.
pub fn create_with<T, C>(config: &ClientConfig, context: impl FnOnce(Tokens) -> C) -> KafkaResult<T>
where
    T: FromClientConfigAndContext<C>,
    C: ClientContext,
{
    let (config, tokens) = prepare(config)?;
    T::from_config_and_context(&config, context(tokens))
}

/// A client for a tool's short questions (metadata, offsets, a few records).
pub fn create<T: FromClientConfigAndContext<ToolContext>>(config: &ClientConfig) -> KafkaResult<T> {
    create_with(config, |tokens| ToolContext { tokens })
}

/// A consumer for a tool's questions. Its first token is taken at once: librdkafka asks for it
/// while the client is made, but only a poll hands the request to us, and a tool asking for
/// metadata does not poll.
pub fn consumer(config: &ClientConfig) -> KafkaResult<BaseConsumer<ToolContext>> {
    let consumer: BaseConsumer<ToolContext> = create(config)?;
    take_first_token(&consumer, &consumer.client().context().tokens);
    Ok(consumer)
}

/// Hands `consumer` its first token now (see [`consumer`]): for a consumer that asks the brokers
/// (committed offsets, metadata) before its first poll. Not subscribed or assigned yet, the poll
/// returns no record.
pub fn take_first_token<C: ConsumerContext>(consumer: &BaseConsumer<C>, tokens: &Tokens) {
    if matches!(tokens, Tokens::MskIam(_)) {
        let _ = consumer.poll(Duration::ZERO);
    }
}

/// An admin client. rdkafka's admin client never polls the queue librdkafka asks for tokens on,
/// so an MSK IAM login cannot be handed one: refused at once, naming what to do instead.
pub fn admin(config: &ClientConfig) -> KafkaResult<rdkafka::admin::AdminClient<ToolContext>> {
    // Refused before a client (and its broker connections) is made for nothing.
    let (config, tokens) = prepare(config)?;
    if matches!(tokens, Tokens::MskIam(_)) {
        return Err(KafkaError::ClientCreation(
            "Amazon MSK IAM: topics cannot be created or described with this login (rdkafka's admin client \
             cannot take an IAM token); create them beforehand"
                .into(),
        ));
    }
    rdkafka::admin::AdminClient::from_config_and_context(&config, ToolContext { tokens })
}

/// The context of the tools' clients: librdkafka's logs and errors as rdkafka's default context
/// reports them, and the tokens.
pub struct ToolContext {
    pub tokens: Tokens,
}

impl ClientContext for ToolContext {
    answer_token_refreshes!();
}

impl ConsumerContext for ToolContext {}

/// An unsecured JWT (`alg: none`) as librdkafka's builtin makes it from `sasl.oauthbearer.config`
/// (`principal=NAME [principalClaimName=sub] [scope=A,B] [scopeClaimName=scope]
/// [lifeSeconds=3600]`).
fn unsecured_jwt(config: &str, now: time::OffsetDateTime) -> Result<OAuthToken, String> {
    let value = |name: &str| config.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let principal = value("principal")
        .filter(|p| !p.is_empty())
        .ok_or("[kafka] sasl.oauthbearer.config names no principal=... for the unsecured JWT")?;
    let life: i64 =
        value("lifeSeconds").map_or(Ok(3600), str::parse).map_err(|_| "lifeSeconds must be a whole number")?;
    let iat = now.unix_timestamp();
    let mut claims = serde_json::json!({
        value("principalClaimName").unwrap_or("sub"): principal,
        "iat": iat,
        "exp": iat + life,
    });
    if let Some(scope) = value("scope") {
        claims[value("scopeClaimName").unwrap_or("scope")] = scope.split(',').collect::<Vec<_>>().into();
    }
    let b64 = |json: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    };
    Ok(OAuthToken {
        token: format!("{}.{}.", b64(&serde_json::json!({"alg": "none"})), b64(&claims)),
        principal_name: principal.to_string(),
        lifetime_ms: (iat + life) * 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_msk_iam_becomes_oauthbearer_with_the_signer_of_the_clusters_region() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "b-1.c.x.c3.kafka.us-west-2.amazonaws.com:9098")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "AWS_MSK_IAM");
        let (prepared, tokens) = prepare(&config).unwrap();
        assert_eq!(prepared.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(prepared.get("security.protocol"), Some("SASL_SSL"));
        match tokens {
            Tokens::MskIam(signer) => assert_eq!(signer.region(), "us-west-2"),
            other => panic!("{other:?}"),
        }
        config.set("sasl.mechanism", "SCRAM-SHA-512");
        let (prepared, tokens) = prepare(&config).unwrap();
        assert_eq!(prepared.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert!(matches!(tokens, Tokens::None));
    }

    #[test]
    fn an_unsecured_jwt_carries_the_principal_and_lifetime_of_the_oauthbearer_config() {
        let now = time::macros::datetime!(2026-12-07 01:30:00 UTC);
        let token = unsecured_jwt("principal=admin lifeSeconds=60 scope=read,write", now).unwrap();
        let parts: Vec<&str> = token.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "unsigned");
        let decode = |part: &str| -> serde_json::Value {
            use base64::Engine as _;
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        assert_eq!(decode(parts[0]), serde_json::json!({"alg": "none"}));
        let claims = decode(parts[1]);
        assert_eq!(claims["sub"], "admin");
        assert_eq!(claims["exp"], now.unix_timestamp() + 60);
        assert_eq!(claims["scope"], serde_json::json!(["read", "write"]));
        assert_eq!(token.lifetime_ms, (now.unix_timestamp() + 60) * 1000);
        let Err(error) = unsecured_jwt("lifeSeconds=60", now) else { panic!("a token without a principal") };
        assert!(error.contains("principal"), "{error}");
    }

    #[test]
    fn an_oauthbearer_login_without_a_token_source_says_what_to_set() {
        let Err(error) = Tokens::None.generate(None) else { panic!("a token from nowhere") };
        let error = error.to_string();
        assert!(error.contains("AWS_MSK_IAM") && error.contains("unsecure.jwt"), "{error}");
    }
}
