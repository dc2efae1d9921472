//! Placeholder: being written.
use serde::Deserialize;
use crate::component::{BuildContext, Transform};
use crate::config::FieldError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {}

impl EnrichConfig {
    pub fn outputs(&self) -> Vec<String> { vec![String::new()] }
    pub fn validate(&self) -> Vec<FieldError> { Vec::new() }
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Transform>, String> { Err("placeholder".into()) }
}
