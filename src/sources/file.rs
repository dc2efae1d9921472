//! Placeholder: being written.
use serde::Deserialize;
use crate::component::{BuildContext, Source};
use crate::config::FieldError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {}

impl FileSourceConfig {
    pub fn outputs(&self) -> Vec<String> { vec![String::new()] }
    pub fn validate(&self) -> Vec<FieldError> { Vec::new() }
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<Box<dyn Source>, String> { Err("placeholder".into()) }
}
