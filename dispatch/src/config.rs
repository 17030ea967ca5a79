//! The service's configuration: a TOML file (the contract's `[server] [store] [region] [sla]
//! [[tokens]]`, plus optional `[engine]` tunables, `[reliability]` and `[etr]` for the
//! reports, and `[log]`), overridable by `DISPATCH_*`
//! environment variables, typed and validated once at start so that a bad value stops the
//! service with a message naming it instead of surfacing at the first request.
//!
//! This is the only module that reads the process environment.

use crate::domain::SlaPolicy;
use crate::engine::EngineConfig;
use crate::reports::{EtrConfig, ReliabilityConfig};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bundled region, relative to the repository root.
pub const DEFAULT_REGION: &str = "geo-data/regions/huizhou";
/// Name of the development token file inside the data directory.
pub const DEV_TOKEN_FILE: &str = "dev-tokens.json";
/// Bearer tokens shorter than this are refused: they could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub region: RegionConfig,
    pub sla: SlaPolicy,
    /// Dispatch tunables; their SLA limits come from `[sla]`, never from here.
    pub engine: EngineConfig,
    /// How incidents become customers interrupted in the reliability indices.
    pub reliability: ReliabilityConfig,
    /// Repair-duration priors for the estimated time of restoration.
    pub etr: EtrConfig,
    pub log: LogConfig,
    pub tokens: Vec<TokenConfig>,
}

/// The most `/v1` requests `server.max_in_flight` may allow under way at once.
pub const MAX_IN_FLIGHT: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Requests under way at once on `/v1`; more are answered 429 at once rather than queued
    /// behind a slow store (the client retries after `Retry-After`).
    pub max_in_flight: usize,
    /// After a shutdown signal, in-flight requests get this long before the store is closed.
    pub shutdown_grace_seconds: u64,
    /// A request body that sends nothing for this long is given up (408): a phone that lost
    /// signal mid-upload must not hold a place under `max_in_flight` for ever.
    pub body_timeout_ms: u64,
    /// A request head not in this long after the server is ready for it closes the
    /// connection: a client that sends half a head holds no task or socket for ever. The
    /// wait for the next request on a keep-alive connection counts too, so an idle
    /// connection closes after this long.
    pub header_timeout_ms: u64,
    /// With a shared store: the URL the other instances send writes to while this one
    /// decides (`http://<bind>` when unset; required when `bind` is a wildcard address).
    pub advertise_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_in_flight: 1024,
            shutdown_grace_seconds: 30,
            body_timeout_ms: 30_000,
            header_timeout_ms: 30_000,
            advertise_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Embedded,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Embedded: the data directory (also where the development token file lives).
    pub path: PathBuf,
    /// Redis: the server's URL, or a list of Cluster nodes (every master, so each one's
    /// persistence is checked).
    pub url: Option<RedisUrls>,
    /// Redis: the region's hash tag in every key (the region directory's name when unset).
    /// Regions with different namespaces spread over a Cluster's shards.
    pub namespace: Option<String>,
    /// Redis: accept a server that keeps nothing on disk (acknowledged tickets are lost
    /// when it restarts). For tests and demos only.
    pub allow_volatile: bool,
    /// Redis: how long the region's lease lasts unless renewed (a third of it apart): the
    /// longest writes wait for another instance to take over from one that died.
    pub lease_ms: u64,
    /// Redis: a command not answered within this long fails.
    pub command_timeout_ms: u64,
    /// A write not committed within this long is treated as failed (503, service marked
    /// failed), so a hung disk cannot hold requests forever.
    pub write_timeout_ms: u64,
    /// Embedded: how many backups `POST /v1/admin/backups` leaves in `backups/`, the one it
    /// just took included; the oldest beyond go. 0 keeps every one.
    pub backups_keep: u32,
}

/// One Redis URL, or several Cluster nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RedisUrls {
    One(String),
    Cluster(Vec<String>),
}

impl RedisUrls {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            RedisUrls::One(url) => vec![url.clone()],
            RedisUrls::Cluster(urls) => urls.clone(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Embedded,
            path: PathBuf::from("data"),
            url: None,
            namespace: None,
            allow_volatile: false,
            lease_ms: 3_000,
            command_timeout_ms: 2_000,
            write_timeout_ms: 10_000,
            // A week of nightly backups.
            backups_keep: 7,
        }
    }
}

impl StoreConfig {
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    pub path: PathBuf,
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_REGION),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `dispatch=debug,tower_http=info`.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Crew,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Crew => "crew",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

/// A static bearer token. Crew tokens are normally minted by an admin through the API; one
/// given here must name its crew with `crew_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crew_id: Option<String>,
}

// Hand-written so that a token never reaches a log through `{:?}`.
impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("crew_id", &self.crew_id)
            .finish()
    }
}

/// A TOML syntax error quotes the line it is on (`3 | token = "…"`), and that line may hold
/// a bearer token bound for the journal: keep where the error is and what is wrong, never
/// the quoted source.
fn without_source_lines(message: &str) -> String {
    let quoted = |line: &str| {
        let line = line.trim_start();
        line.starts_with('|')
            || line.split_once('|').is_some_and(|(gutter, _)| {
                !gutter.trim().is_empty() && gutter.trim().chars().all(|c| c.is_ascii_digit())
            })
    };
    message
        .lines()
        .filter(|line| !line.trim().is_empty() && !quoted(line))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} is not a readable file")]
    Missing(PathBuf),
    #[error("invalid configuration: {}", without_source_lines(&.0.to_string()))]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("region directory {0} does not exist (set [region] path)")]
    RegionMissing(PathBuf),
    #[error("development token file {path}: {source}")]
    DevTokens {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Config {
    /// Reads `file` (when given) and `DISPATCH_*` environment variables over the defaults,
    /// e.g. `DISPATCH_SERVER__BIND=0.0.0.0:8080`, then validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Missing(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("DISPATCH_").split("__"));
        Self::from_figment(&figment)
    }

    /// Parses a configuration from TOML text (tests, tools).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(&Figment::from(Toml::string(text)))
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        // `[engine]` deserializes as the engine's own config, which carries an SLA policy;
        // the contract's place for it is `[sla]`, so two places for one limit are refused.
        if figment.contains("engine.sla") {
            return Err(ConfigError::Invalid(
                "set SLA limits in [sla], not [engine.sla]".into(),
            ));
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.store.kind == StoreKind::Redis {
            let urls = self
                .store
                .url
                .as_ref()
                .map(RedisUrls::to_vec)
                .unwrap_or_default();
            if urls.is_empty() || urls.iter().any(|u| u.trim().is_empty()) {
                return invalid(
                    "store.kind = \"redis\" needs store.url: a URL, or a list of Cluster nodes"
                        .into(),
                );
            }
            if let Some(namespace) = &self.store.namespace
                && !crate::store::redis::valid_namespace(namespace)
            {
                return invalid(format!(
                    "store.namespace {namespace:?} must be 1 to 64 letters, digits, '-' or '_'"
                ));
            }
            if self.store.lease_ms < 300 {
                return invalid("store.lease_ms must be at least 300".into());
            }
            if self.store.command_timeout_ms == 0 {
                return invalid("store.command_timeout_ms must be at least 1".into());
            }
            if self.server.advertise_url.is_none() && self.server.bind.ip().is_unspecified() {
                return invalid(format!(
                    "server.bind {} listens on every address: set server.advertise_url to the \
                     URL other instances reach this one at",
                    self.server.bind
                ));
            }
        }
        if self.store.path.as_os_str().is_empty() {
            return invalid("store.path must name a directory".into());
        }
        // Under a tenth of a second, one slow fsync would fail the service (it then refuses
        // writes until restarted): a value meant in seconds, most likely.
        if self.store.write_timeout_ms < 100 {
            return invalid(format!(
                "store.write_timeout_ms must be at least 100 (milliseconds), not {}",
                self.store.write_timeout_ms
            ));
        }
        // Past a million, a limit protects nothing, and tokio's semaphore cannot hold it.
        if !(1..=MAX_IN_FLIGHT).contains(&self.server.max_in_flight) {
            return invalid(format!(
                "server.max_in_flight must be from 1 to {MAX_IN_FLIGHT}, not {}",
                self.server.max_in_flight
            ));
        }
        if !(100..=600_000).contains(&self.server.body_timeout_ms) {
            return invalid(format!(
                "server.body_timeout_ms must be from 100 to 600000 (milliseconds), not {}",
                self.server.body_timeout_ms
            ));
        }
        if !(100..=600_000).contains(&self.server.header_timeout_ms) {
            return invalid(format!(
                "server.header_timeout_ms must be from 100 to 600000 (milliseconds), not {}",
                self.server.header_timeout_ms
            ));
        }
        if let Some(url) = &self.server.advertise_url {
            let parsed = reqwest::Url::parse(url);
            if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                return invalid(format!(
                    "server.advertise_url {url:?} must be an http:// URL the other instances \
                     reach this one at"
                ));
            }
        }
        self.engine_config()
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.reliability
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.etr
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let name = format!("tokens[{i}] ({})", token.role.as_str());
            if let Some(why) = token_unfit(&token.token) {
                return invalid(format!("{name}: the token {why}"));
            }
            if !seen.insert(token.token.as_str()) {
                return invalid(format!("{name}: the same token appears twice"));
            }
            match (token.role, &token.crew_id) {
                (Role::Crew, None) => {
                    return invalid(format!("{name}: a crew token needs crew_id"));
                }
                (Role::Crew, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return invalid(format!("{name}: only crew tokens take crew_id"));
                }
            }
        }
        Ok(())
    }

    /// The engine's configuration with the SLA limits of `[sla]`.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            sla: self.sla,
            ..self.engine.clone()
        }
    }

    /// The region directory: as configured, relative to the current directory. When the
    /// default is not found there, the copy in this source tree is used, so that
    /// `cargo run -p dispatch -- serve` works from anywhere in the repository.
    pub fn region_dir(&self) -> Result<PathBuf, ConfigError> {
        let configured = &self.region.path;
        if configured.is_dir() {
            return Ok(configured.clone());
        }
        if configured == Path::new(DEFAULT_REGION) {
            let bundled = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(DEFAULT_REGION);
            if bundled.is_dir() {
                return Ok(bundled.canonicalize().unwrap_or(bundled));
            }
        }
        Err(ConfigError::RegionMissing(configured.clone()))
    }
}

/// The development tokens: one per desk role, kept in the data directory so they survive
/// restarts. Used only when the configuration lists no `[[tokens]]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokens {
    pub agent: String,
    pub supervisor: String,
    pub admin: String,
}

impl std::fmt::Debug for DevTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevTokens(<redacted>)")
    }
}

impl DevTokens {
    /// Reads `DIR/dev-tokens.json`, creating it (mode 0600) with fresh random tokens on
    /// first start. Returns the file's path with the tokens.
    pub fn load_or_create(data_dir: &Path) -> Result<(PathBuf, Self), ConfigError> {
        let path = data_dir.join(DEV_TOKEN_FILE);
        let fail = |source| ConfigError::DevTokens {
            path: path.clone(),
            source,
        };
        let invalid = |why: String| {
            fail(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{why}; delete the file to have new tokens made at the next start"),
            ))
        };
        let read = |bytes: Vec<u8>| {
            let tokens: DevTokens = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("not the token file this service writes ({e})")))?;
            tokens.check().map_err(invalid)?;
            Ok((path.clone(), tokens))
        };
        match std::fs::read(&path) {
            Ok(bytes) => return read(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
        std::fs::create_dir_all(data_dir).map_err(fail)?;
        let tokens = DevTokens {
            agent: random_token(),
            supervisor: random_token(),
            admin: random_token(),
        };
        let mut text = serde_json::to_vec_pretty(&tokens)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        text.push(b'\n');
        match write_private(&path, &text) {
            Ok(()) => Ok((path, tokens)),
            // Another process started on the same directory made it first: use its tokens
            // (read once; a name that exists but cannot be read, a dangling link, is an error).
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                read(std::fs::read(&path).map_err(fail)?)
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// Tokens anyone could guess, or one token for two roles, are refused.
    fn check(&self) -> Result<(), String> {
        let roles = [
            ("agent", &self.agent),
            ("supervisor", &self.supervisor),
            ("admin", &self.admin),
        ];
        for (role, token) in roles {
            if let Some(why) = token_unfit(token) {
                return Err(format!("the {role} token {why}"));
            }
        }
        if self.agent == self.supervisor
            || self.agent == self.admin
            || self.supervisor == self.admin
        {
            return Err("two roles share one token".into());
        }
        Ok(())
    }

    pub fn token_configs(&self) -> Vec<TokenConfig> {
        [
            (&self.agent, Role::Agent),
            (&self.supervisor, Role::Supervisor),
            (&self.admin, Role::Admin),
        ]
        .into_iter()
        .map(|(token, role)| TokenConfig {
            token: token.clone(),
            role,
            crew_id: None,
        })
        .collect()
    }
}

/// Why a bearer token is unfit, if it is: short enough to guess, or not one a header carries
/// as it is. The same rule for configured tokens and the development token file.
fn token_unfit(token: &str) -> Option<String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Some(format!("is shorter than {MIN_TOKEN_CHARS} characters"));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Some("must be printable ASCII without spaces".into());
    }
    None
}

/// 32 random bytes from the thread's cryptographically secure generator, as hex.
pub fn random_token() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` readable by its owner only, whole or not at all (a crash halfway must not
/// leave an empty file that stops every later start); refuses to overwrite.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".dev-tokens").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder.tempfile_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().sync_all()?;
    // `persist_noclobber` links the finished file into place, failing if one is there.
    file.persist_noclobber(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file_are_the_contracts() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.store.kind, StoreKind::Embedded);
        assert_eq!(config.store.path, PathBuf::from("data"));
        assert_eq!(config.region.path, PathBuf::from(DEFAULT_REGION));
        assert_eq!(config.sla, SlaPolicy::default());
        assert!(config.tokens.is_empty());
    }

    #[test]
    fn the_contracts_example_parses() {
        let config = Config::from_toml(
            r#"
            [server]
            bind = "127.0.0.1:9090"
            [store]
            kind = "embedded"
            path = "/var/lib/dispatch"
            url = "redis://127.0.0.1:6379/"
            [region]
            path = "geo-data/regions/huizhou"
            [sla]
            acknowledge = 3
            arrive_urban = 60
            arrive_rural = 120
            arrive_remote = 240
            [[tokens]]
            token = "agent-token-0123456789"
            role = "agent"
            [[tokens]]
            token = "crew-token-0123456789"
            role = "crew"
            crew_id = "441302-01-c1"
            [engine]
            merge_radius_m = 500.0
            "#,
        )
        .unwrap();
        assert_eq!(config.server.bind.port(), 9090);
        assert_eq!(config.engine_config().sla.acknowledge, 3);
        assert_eq!(config.engine_config().merge_radius_m, 500.0);
        assert_eq!(config.tokens.len(), 2);
    }

    fn error_of(text: &str) -> String {
        Config::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        assert!(error_of("[server]\nbindd = \"x\"").contains("bindd"));
        assert!(error_of("[nope]\na = 1").contains("nope"));
        assert!(error_of("[sla]\narrive_city = 3").contains("arrive_city"));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(error_of("[sla]\nacknowledge = 0").contains("acknowledge"));
        assert!(error_of("[server]\nbind = \"nowhere\"").contains("bind"));
        assert!(error_of("[engine]\ncircuity = -1.0").contains("circuity"));
        assert!(error_of("[engine.sla]\nacknowledge = 2").contains("[sla]"));
        assert!(
            error_of("[[tokens]]\ntoken = \"short\"\nrole = \"agent\"").contains("16 characters")
        );
        assert!(
            error_of("[[tokens]]\ntoken = \"crew-token-0123456789\"\nrole = \"crew\"")
                .contains("crew_id")
        );
        assert!(
            error_of("[[tokens]]\ntoken = \"agent-token-0123456789\"\nrole = \"boss\"")
                .contains("boss")
        );
    }

    #[test]
    fn the_report_sections_are_optional_strict_and_checked() {
        let config = Config::from_toml(
            "[reliability]\nmomentary_minutes = 3\n[reliability.customers_per_incident]\n\
             area_outage = 200\n[etr]\nmin_samples = 5\n[etr.prior_repair_minutes]\nline_down = 240",
        )
        .unwrap();
        assert_eq!(config.reliability.momentary_minutes, 3);
        assert_eq!(
            config
                .reliability
                .customers_for(crate::domain::FaultCategory::AreaOutage),
            Some(200)
        );
        assert_eq!(
            config
                .etr
                .prior_minutes(crate::domain::FaultCategory::LineDown),
            240
        );
        assert!(error_of("[reliability]\nmomentary = 3").contains("momentary"));
        assert!(error_of("[reliability.customers_per_incident]\nmeter = 2").contains("meter"));
        assert!(
            error_of("[reliability.customers_per_incident]\nno_power = 0").contains("no_power")
        );
        assert!(error_of("[etr.prior_repair_minutes]\nsparks = 2").contains("sparks"));
        assert!(error_of("[etr]\nmin_samples = 0").contains("min_samples"));
    }

    #[test]
    fn sla_warnings_and_emergency_limits_are_read_and_checked() {
        use crate::domain::{AreaClass, FaultCategory, Priority, SlaStage, WarnLevel};
        let config = Config::from_toml(
            "[sla]\nacknowledge = 5\narrive_urban = 45\nwarn_at = [0.8, 0.5, 0.9]\n\
             [sla.emergency]\narrive_urban = 30\n[sla.warnings]\nacknowledge = [0.6]\nreturn = []",
        )
        .unwrap();
        let sla = config.engine_config().sla;
        let levels = |stage| {
            sla.warn_levels(stage)
                .iter()
                .map(WarnLevel::permille)
                .collect::<Vec<_>>()
        };
        assert_eq!(levels(SlaStage::Arrive), [500, 800, 900]);
        assert_eq!(levels(SlaStage::Acknowledge), [600]);
        assert!(levels(SlaStage::Return).is_empty());
        let arrive = |priority| {
            sla.limit_minutes(
                SlaStage::Arrive,
                AreaClass::Urban,
                FaultCategory::NoPower,
                priority,
            )
        };
        assert_eq!(arrive(Priority::Normal), Some(45));
        assert_eq!(arrive(Priority::Emergency), Some(30));
        // Refused at start, each naming what is wrong.
        assert!(error_of("[sla.warnings]\narival = [0.5]").contains("arival"));
        assert!(error_of("[sla.emergency]\narrive_city = 3").contains("arrive_city"));
        assert!(error_of("[sla]\narrive_urban = -5").contains("arrive_urban"));
        assert!(error_of("[sla.emergency]\nrestore_rural = 0").contains("emergency.restore_rural"));
        for bad in ["[1.0]", "[0]", "[-0.2]", "[1.5]"] {
            let error = error_of(&format!("[sla]\nwarn_at = {bad}"));
            assert!(error.contains("strictly between 0 and 1"), "{bad}: {error}");
        }
    }

    #[test]
    fn redis_needs_a_url_and_takes_one_or_a_cluster() {
        assert!(error_of("[store]\nkind = \"redis\"").contains("store.url"));
        let one = Config::from_toml("[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379/\"")
            .unwrap();
        assert_eq!(one.store.url.unwrap().to_vec(), ["redis://127.0.0.1:6379/"]);
        let cluster = Config::from_toml(
            "[store]\nkind = \"redis\"\nurl = [\"redis://a:7000\", \"redis://b:7001\"]",
        )
        .unwrap();
        assert_eq!(cluster.store.url.unwrap().to_vec().len(), 2);
        assert!(
            error_of("[store]\nkind = \"redis\"\nurl = \"redis://x/\"\nnamespace = \"a{b}\"")
                .contains("store.namespace")
        );
        assert!(
            error_of(
                "[server]\nbind = \"0.0.0.0:8080\"\n[store]\nkind = \"redis\"\nurl = \"redis://x/\""
            )
            .contains("advertise_url")
        );
    }

    #[test]
    fn limits_that_would_break_the_service_at_run_time_are_refused_at_start() {
        // A huge in-flight limit once panicked after recovery, in tokio's semaphore.
        assert!(
            error_of("[server]\nmax_in_flight = 9000000000000000000").contains("max_in_flight")
        );
        assert!(error_of("[server]\nmax_in_flight = 0").contains("max_in_flight"));
        assert!(Config::from_toml("[server]\nmax_in_flight = 1000000").is_ok());
        assert!(error_of("[store]\nwrite_timeout_ms = 10").contains("write_timeout_ms"));
        assert!(Config::from_toml("[store]\nwrite_timeout_ms = 100").is_ok());
        // A zero timeout would close every connection before its first request.
        for key in ["body_timeout_ms", "header_timeout_ms"] {
            for bad in [0, 99, 600_001] {
                let error = error_of(&format!("[server]\n{key} = {bad}"));
                assert!(error.contains(key), "{key} = {bad}: {error}");
            }
            assert!(Config::from_toml(&format!("[server]\n{key} = 100")).is_ok());
        }
        for bad in [
            "10.0.0.5:8080",
            "dispatch-1",
            "ftp://dispatch-1/",
            "http://",
        ] {
            let error = error_of(&format!("[server]\nadvertise_url = {bad:?}"));
            assert!(error.contains("advertise_url"), "{bad}: {error}");
        }
        assert!(Config::from_toml("[server]\nadvertise_url = \"http://10.0.0.5:8080\"").is_ok());
    }

    #[test]
    fn a_syntax_error_never_quotes_the_line_it_is_on() {
        let secret = "agent-token-9f8e7d6c5b4a";
        for text in [
            format!("[[tokens]]\nrole = \"agent\"\ntoken = \"{secret}\\q\""),
            format!("[[tokens]]\nrole = \"agent\"\ntoken = \"{secret}"),
        ] {
            let error = error_of(&text);
            assert!(!error.contains(secret), "{error}");
            assert!(error.contains("line 3"), "where it is: {error}");
        }
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let config =
            Config::from_toml("[[tokens]]\ntoken = \"agent-token-0123456789\"\nrole = \"agent\"")
                .unwrap();
        assert!(!format!("{config:?}").contains("agent-token"));
    }

    #[test]
    fn dev_tokens_are_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, first) = DevTokens::load_or_create(dir.path()).unwrap();
        let (_, second) = DevTokens::load_or_create(dir.path()).unwrap();
        assert_eq!(first.agent, second.agent);
        assert_ne!(first.agent, first.admin);
        assert_eq!(first.agent.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A file left empty or edited into something unsafe stops the start with a message that
    /// says how to get going again.
    #[test]
    fn a_damaged_or_weak_dev_token_file_is_refused_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_TOKEN_FILE);
        let strong = "0123456789abcdef0123";
        for (content, why) in [
            (String::new(), "not the token file"),
            (
                format!(r#"{{"agent": "short", "supervisor": "{strong}1", "admin": "{strong}2"}}"#),
                "agent token is shorter",
            ),
            (
                format!(
                    r#"{{"agent": "{strong}", "supervisor": "{strong}", "admin": "{strong}2"}}"#
                ),
                "two roles share one token",
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            let refused = DevTokens::load_or_create(dir.path())
                .unwrap_err()
                .to_string();
            assert!(refused.contains(why), "{refused}");
            assert!(refused.contains("delete the file"), "{refused}");
        }
        // A name that is there but leads nowhere (a link to a secret not mounted yet) is an
        // error, not a loop.
        #[cfg(unix)]
        {
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(dir.path().join("not-mounted"), &path).unwrap();
            assert!(DevTokens::load_or_create(dir.path()).is_err());
        }
        std::fs::remove_file(&path).unwrap();
        assert!(DevTokens::load_or_create(dir.path()).is_ok());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn the_default_region_is_found_from_anywhere_in_the_tree() {
        assert!(Config::default().region_dir().unwrap().is_dir());
        let elsewhere = Config {
            region: RegionConfig {
                path: PathBuf::from("no/such/region"),
            },
            ..Config::default()
        };
        assert!(matches!(
            elsewhere.region_dir(),
            Err(ConfigError::RegionMissing(_))
        ));
    }
}
