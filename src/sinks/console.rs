//! Placeholder: being written.
use serde::Deserialize;
use crate::component::{BuildContext, Sink};
use crate::config::FieldError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {}

impl ConsoleConfig {
    pub fn outputs(&self) -> Vec<String> { vec![String::new()] }
    pub fn validate(&self) -> Vec<FieldError> { Vec::new() }
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Sink>, String> { Err("placeholder".into()) }
}
