//! Placeholder: being written.
use super::Config;
pub struct Loaded { pub config: Config, pub warnings: Vec<ConfigError> }
#[derive(Debug, Clone)]
pub struct ConfigError { pub message: String }
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);
pub fn load_file(_path: &std::path::Path) -> Result<Loaded, ConfigErrors> { unimplemented!() }
pub fn load_str(_text: &str, _file: &str) -> Result<Loaded, ConfigErrors> { unimplemented!() }
