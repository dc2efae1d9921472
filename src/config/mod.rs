//! The topology file, loaded in two phases.
//!
//! 1. [`loader`] reads `topology.toml`: `${VAR}` / `${VAR:-default}` are
//!    substituted, the TOML is parsed keeping spans, and every section is
//!    deserialized into the raw, `deny_unknown_fields` config structs of its
//!    component type. Problems are collected, not stopped at.
//! 2. The components are wired into a [`Config`]: inputs resolved against
//!    known components and their declared outputs, cycles and duplicate ids
//!    found. Every error names the file, line, component id, field and bad value.
//!
//! The result is plain data; [`crate::topology`] turns it into running actors.

pub mod graph;
pub mod loader;
pub mod units;

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
pub use loader::{
    load_file, load_str, load_str_with_env, ConfigError, ConfigErrors, Loaded, Severity,
};
pub use units::{ByteSize, ConfigDuration};

/// A validated topology.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages.
    pub file: String,
    pub engine: EngineConfig,
    pub api: ApiConfig,
    /// Components in the order they appear in the file.
    pub components: Vec<ComponentSpec>,
}

impl Config {
    /// The component with `id`.
    pub fn component(&self, id: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.id == id)
    }
}

/// Whether a component brings events in, changes them, or writes them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    Source,
    Transform,
    Sink,
}

impl ComponentKind {
    /// `source`, `transform` or `sink`: the `component_kind` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Transform => "transform",
            ComponentKind::Sink => "sink",
        }
    }

    /// The table holding components of this kind: `sources`, `transforms`, `sinks`.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Source => "sources",
            ComponentKind::Transform => "transforms",
            ComponentKind::Sink => "sinks",
        }
    }
}

/// One component of the topology.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub id: String,
    pub kind: ComponentKind,
    /// The `type` string, e.g. `filter`.
    pub type_name: String,
    /// Where its events come from (empty for sources).
    pub inputs: Vec<InputRef>,
    /// Its outputs, by port: `""` is the default output.
    pub outputs: Vec<String>,
    pub config: ComponentConfig,
    /// Line of its table header in the file.
    pub line: usize,
}

/// The typed config of a component.
#[derive(Debug, Clone)]
pub enum ComponentConfig {
    Source(SourceConfig),
    Transform(TransformConfig),
    Sink(SinkConfig),
}

/// One entry of `inputs`: `component` or `component.output`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputRef {
    pub component: String,
    /// `""` for the default output.
    pub output: String,
}

impl InputRef {
    /// Splits `a.b` at the first dot: component ids contain no dots.
    pub fn parse(text: &str) -> InputRef {
        match text.split_once('.') {
            Some((component, output)) => InputRef {
                component: component.to_owned(),
                output: output.to_owned(),
            },
            None => InputRef {
                component: text.to_owned(),
                output: String::new(),
            },
        }
    }
}

impl fmt::Display for InputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.output.is_empty() {
            f.write_str(&self.component)
        } else {
            write!(f, "{}.{}", self.component, self.output)
        }
    }
}

/// Events per batch unless `engine.batch_size` says otherwise. Small enough
/// that a batch (~400 KB of parsed events) stays in a core's L2 cache while it
/// crosses the pipeline: on the benchmark topology 128 used a third less CPU
/// per event than 1024, whose 3.5 MB batches stream from main memory at every
/// hop.
pub const DEFAULT_BATCH_SIZE: usize = 128;

/// `[engine]`: how the actors run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Events per message between actors.
    pub batch_size: usize,
    /// Batches an actor may hold queued: the backpressure bound on every edge.
    pub mailbox_capacity: usize,
    /// How long a graceful shutdown may take before the process gives up draining.
    pub shutdown_timeout: ConfigDuration,
    /// Arbiter threads running the actors; defaults to the number of cores.
    pub threads: Option<usize>,
    /// Supervision policy, applied to each component.
    pub restart: RestartConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            mailbox_capacity: 8,
            shutdown_timeout: ConfigDuration(std::time::Duration::from_secs(25)),
            threads: None,
            restart: RestartConfig::default(),
        }
    }
}

/// `[engine.restart]`: how often a component may crash before it is failed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    /// More restarts than this within `within` marks the component failed.
    pub max_restarts: u32,
    /// The sliding window restarts are counted in.
    pub within: ConfigDuration,
    /// Delay before a restarted component takes work again, doubling per restart.
    pub backoff: BackoffConfig,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            max_restarts: 5,
            within: ConfigDuration(std::time::Duration::from_secs(60)),
            backoff: BackoffConfig::default(),
        }
    }
}

/// Exponential backoff bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub initial: ConfigDuration,
    pub max: ConfigDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: ConfigDuration(std::time::Duration::from_millis(100)),
            max: ConfigDuration(std::time::Duration::from_secs(10)),
        }
    }
}

/// `[api]`: the operator's HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API at all.
    pub enabled: bool,
    /// Address for `/health`, `/ready`, `/metrics`, `/topology`.
    pub listen: SocketAddr,
    /// `counts = { sink = "user_counts" }`: serve `GET /v1/counts/{userId}`
    /// from that `hash_counter` redis sink's hashes.
    pub counts: Option<CountsApiConfig>,
    /// Credentials the data endpoints (`/v1/...`) accept; required with `counts`.
    pub auth: crate::auth::AuthConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9598)),
            counts: None,
            auth: crate::auth::AuthConfig::default(),
        }
    }
}

/// `[api] counts = { sink = "<id>" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsApiConfig {
    /// The id of a `redis` sink with `mode = "hash_counter"` and a key
    /// template whose only placeholder is `{userId}`.
    pub sink: String,
}

impl ApiConfig {
    /// Checks that need the components: the counts sink exists and fits,
    /// and the endpoint is protected.
    pub fn validate(&self, components: &[ComponentSpec]) -> Vec<FieldError> {
        let mut errors = self.auth.validate("auth.");
        let Some(counts) = &self.counts else {
            return errors;
        };
        if self.auth.is_empty() {
            errors.push(FieldError::new(
                "auth",
                "counts is served, so auth needs at least one of write_keys or bearer_tokens",
            ));
        }
        let sink = components.iter().find(|c| c.id == counts.sink);
        let problem = match sink.map(|c| &c.config) {
            None => Some("there is no such sink".to_owned()),
            Some(ComponentConfig::Sink(crate::sinks::SinkConfig::Redis(redis))) => {
                crate::sinks::redis::counts::check_sink(redis).err()
            }
            Some(_) => Some("it is not a redis sink".to_owned()),
        };
        if let Some(problem) = problem {
            errors.push(FieldError::new(
                "counts.sink",
                format!(
                    "counts.sink \"{}\" cannot serve counts: {problem}",
                    counts.sink
                ),
            ));
        }
        errors
    }
}

/// A problem with one field of a component's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field inside the component's table (`ops[1].from`),
    /// empty when the problem is the table as a whole.
    pub field: String,
    /// What is wrong, naming the bad value.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Deserializes a component's table (without `type` and `inputs`) into its
/// config struct, naming the field that failed.
pub fn from_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, err.into_inner().to_string())
    })
}

/// Generates the enum of a component kind's configs and its dispatch methods:
/// `parse` (by `type` string), `type_name`, `outputs`, `validate`, `build`.
/// Each listed module's config type provides `outputs()`, `validate()` and
/// `build(&BuildContext)`.
#[macro_export]
macro_rules! component_configs {
    ($(#[$doc:meta])* $name:ident => $built:ty { $($variant:ident($module:ident :: $config:ident) = $type_name:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub enum $name {
            $($variant($module::$config),)+
        }

        impl $name {
            /// Every accepted `type` string.
            pub const TYPES: &'static [&'static str] = &[$($type_name),+];

            /// Deserializes the table of a component of type `type_name`;
            /// `None` when the type is unknown.
            pub fn parse(type_name: &str, table: toml::Table) -> Option<Result<Self, $crate::config::FieldError>> {
                match type_name {
                    $($type_name => Some($crate::config::from_table(table).map($name::$variant)),)+
                    _ => None,
                }
            }

            /// The `type` string.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($name::$variant(_) => $type_name,)+
                }
            }

            /// Output names by port; `""` is the default output. Every
            /// component has a `rejected` output: the supervisor sends poison
            /// events there even if the component itself never rejects.
            pub fn outputs(&self) -> Vec<String> {
                let mut outputs = match self {
                    $($name::$variant(c) => c.outputs(),)+
                };
                if !outputs.iter().any(|o| o == $crate::component::REJECTED) {
                    outputs.push($crate::component::REJECTED.to_owned());
                }
                outputs
            }

            /// Checks that need more than the field's own type.
            pub fn validate(&self) -> Vec<$crate::config::FieldError> {
                match self {
                    $($name::$variant(c) => c.validate(),)+
                }
            }

            /// Creates a fresh instance (also used to restart one).
            pub fn build(&self, cx: &$crate::component::BuildContext<'_>) -> Result<$built, String> {
                match self {
                    $($name::$variant(c) => c.build(cx),)+
                }
            }
        }
    };
}
