//! Steps 3 to 6: sections, components (type, inputs, the type's own config
//! and `validate()`), ids and wiring, each problem recorded with its line.

use super::*;

/// A component after its own table was read (step 4), before wiring.
pub(super) struct Parsed<'d> {
    pub(super) id: String,
    pub(super) kind: ComponentKind,
    /// `section.id`, for messages.
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) item: &'d Item,
    /// `None` when missing or unknown (already reported).
    pub(super) type_name: Option<String>,
    pub(super) inputs: Vec<Input>,
    /// `None` when the table did not deserialize (already reported).
    pub(super) config: Option<ComponentConfig>,
}

impl Parsed<'_> {
    pub(super) fn outputs(&self) -> Option<Vec<String>> {
        self.config.as_ref().map(outputs_of)
    }
}

/// One entry of a component's `inputs`.
pub(super) struct Input {
    pub(super) text: String,
    pub(super) input: InputRef,
    pub(super) line: usize,
}

pub(super) struct Loader<'d, 'f> {
    pub(super) report: Report<'f>,
    pub(super) lines: LineIndex,
    pub(super) document: &'d toml_edit::Table,
    pub(super) root: &'d toml::Table,
}

impl<'d> Loader<'d, '_> {
    /// Steps 3 to 7; `None` when something failed (the report says what).
    pub(super) fn load(&mut self, file: &str) -> Option<Config> {
        self.check_sections();
        let engine: Option<EngineConfig> = self.section_config("engine");
        if let Some(engine) = &engine {
            self.check_engine(engine);
        }
        let api: Option<ApiConfig> = self.section_config("api");

        let mut components = Vec::new();
        for kind in [
            ComponentKind::Source,
            ComponentKind::Transform,
            ComponentKind::Sink,
        ] {
            self.parse_section(kind, &mut components);
        }
        // File order across sections, for messages and for `Config::components`.
        components.sort_by_key(|component| component.line);
        self.check_wiring(&components);

        let (engine, api) = (engine?, api?);
        let components = components
            .into_iter()
            .map(|parsed| {
                Some(ComponentSpec {
                    outputs: parsed.outputs()?,
                    id: parsed.id,
                    kind: parsed.kind,
                    type_name: parsed.type_name?,
                    inputs: parsed.inputs.into_iter().map(|input| input.input).collect(),
                    config: parsed.config?,
                    line: parsed.line,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let api_problems = api.validate(&components);
        if !api_problems.is_empty() {
            let line = self.section_line("api").unwrap_or(1);
            let item = self.document.get("api")?;
            for problem in api_problems {
                self.field_error("api", item, line, problem);
            }
            return None;
        }
        Some(Config {
            file: file.to_owned(),
            engine,
            api,
            components,
        })
    }

    /// Line of a top-level key.
    pub(super) fn section_line(&self, name: &str) -> Option<usize> {
        let (key, item) = self.document.get_key_value(name)?;
        self.lines
            .line_of(key.span())
            .or_else(|| self.lines.line_of(item.span()))
    }

    pub(super) fn check_sections(&mut self) {
        for (name, _) in self.document.iter() {
            if SECTIONS.contains(&name) {
                continue;
            }
            let mut message = format!(
                "unknown section \"{name}\" (expected engine, api, sources, transforms or sinks)"
            );
            if let Some(close) = closest(name, SECTIONS.iter().copied()) {
                message.push_str(&format!("; did you mean \"{close}\"?"));
            }
            let line = self.section_line(name);
            self.report.error(line, None, None, message);
        }
    }

    /// `[engine]` or `[api]`: its defaults when absent, `None` when invalid.
    pub(super) fn section_config<T: DeserializeOwned + Default>(
        &mut self,
        name: &str,
    ) -> Option<T> {
        let Some(value) = self.root.get(name) else {
            return Some(T::default());
        };
        let line = self.section_line(name).unwrap_or(1);
        let Some(table) = value.as_table() else {
            self.report.error(
                Some(line),
                Some(name),
                None,
                format!("`{name}` must be a table ([{name}]), not {}", a_type(value)),
            );
            return None;
        };
        match from_table::<T>(table.clone()) {
            Ok(config) => Some(config),
            Err(error) => {
                let item = self.document.get(name)?;
                self.field_error(name, item, line, error);
                None
            }
        }
    }

    pub(super) fn check_engine(&mut self, engine: &EngineConfig) {
        let mut problems = Vec::new();
        if engine.batch_size == 0 {
            problems.push(FieldError::new(
                "batch_size",
                "batch_size is 0; it must be at least 1",
            ));
        }
        if engine.mailbox_capacity == 0 {
            problems.push(FieldError::new(
                "mailbox_capacity",
                "mailbox_capacity is 0; it must be at least 1",
            ));
        }
        if engine.threads == Some(0) {
            problems.push(FieldError::new(
                "threads",
                "threads is 0; it must be at least 1 (leave it out for one per core)",
            ));
        }
        let backoff = &engine.restart.backoff;
        if backoff.initial > backoff.max {
            problems.push(FieldError::new(
                "restart.backoff.initial",
                format!(
                    "initial backoff {} is longer than restart.backoff.max {}",
                    backoff.initial, backoff.max
                ),
            ));
        }
        let Some(item) = self.document.get("engine") else {
            return;
        };
        let line = self.section_line("engine").unwrap_or(1);
        for problem in problems {
            self.field_error("engine", item, line, problem);
        }
    }

    /// Reports a [`FieldError`] of `component` at the line of its field.
    pub(super) fn field_error(
        &mut self,
        component: &str,
        item: &Item,
        header_line: usize,
        error: FieldError,
    ) {
        let mut message = clean_serde_message(&error.message);
        let mut field = error.field;
        // serde names the unknown or missing field in the message; the path
        // may stop at its parent.
        let named = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "missing field `"));
        if let Some(named) = named {
            let already = field == named || field.ends_with(&format!(".{named}"));
            if !already {
                field = if field.is_empty() {
                    named.to_owned()
                } else {
                    format!("{field}.{named}")
                };
            }
        }
        // `unknown field `fooo`, expected …` and `unknown variant `sotp`, expected …`.
        let unknown = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "unknown variant `"));
        let is_unknown_field = message.starts_with("unknown field `");
        if let Some(unknown) = unknown {
            let expected = message
                .split_once("expected")
                .map(|(_, expected)| backticked(expected))
                .unwrap_or_default();
            if let Some(close) = closest(unknown, expected.iter().copied()) {
                message = format!("{message}; did you mean `{close}`?");
            }
        }
        let (line, found) = find_field(&self.lines, item, &field, header_line);
        // Name the bad value when serde's message does not (`invalid socket
        // address syntax`); an unknown field's value is beside the point.
        if let Some(text) = found.and_then(scalar_text) {
            let bare = text.trim_matches(['"', '\'']);
            // A URL's password never goes into a message.
            let text = crate::sinks::redis::config::redacted(&text);
            let bare = crate::sinks::redis::config::redacted(bare);
            if !is_unknown_field && !message.contains(&bare) {
                message = format!("{message} (got {text})");
            }
        }
        let field = (!field.is_empty()).then_some(field.as_str());
        self.report
            .error(Some(line), Some(component), field, message);
    }

    /// Reads every component of one section into `out`.
    pub(super) fn parse_section(&mut self, kind: ComponentKind, out: &mut Vec<Parsed<'d>>) {
        let section = kind.section();
        let Some(value) = self.root.get(section) else {
            return;
        };
        let line = self.section_line(section).unwrap_or(1);
        let document = self.document;
        let (Some(data), Some(table)) = (
            value.as_table(),
            document.get(section).and_then(Item::as_table_like),
        ) else {
            self.report.error(
                Some(line),
                None,
                None,
                format!(
                    "`{section}` must be a table of components, like [{section}.NAME], not {}",
                    a_type(value)
                ),
            );
            return;
        };
        for (id, item) in table.iter() {
            let line = table
                .get_key_value(id)
                .and_then(|(key, _)| self.lines.line_of(key.span()))
                .or_else(|| self.lines.line_of(item.span()))
                .unwrap_or(line);
            if let Some(value) = data.get(id) {
                let parsed = self.parse_component(kind, id, item, line, value);
                out.push(parsed);
            }
        }
    }

    pub(super) fn parse_component(
        &mut self,
        kind: ComponentKind,
        id: &str,
        item: &'d Item,
        line: usize,
        value: &toml::Value,
    ) -> Parsed<'d> {
        let name = format!("{}.{id}", kind.section());
        let mut parsed = Parsed {
            id: id.to_owned(),
            kind,
            name: name.clone(),
            line,
            item,
            type_name: None,
            inputs: Vec::new(),
            config: None,
        };
        let valid_id = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_id {
            self.report.error(
                Some(line),
                Some(&name),
                None,
                format!(
                    "component id \"{id}\" may only contain letters, digits, `_` and `-` \
                     (outputs are addressed as `id.output`)"
                ),
            );
        }
        let Some(table) = value.as_table() else {
            self.report.error(
                Some(line),
                Some(&name),
                None,
                format!(
                    "a component must be a table, like [{}.{id}], not {}",
                    kind.section(),
                    a_type(value)
                ),
            );
            return parsed;
        };
        let mut table = table.clone();
        let type_value = table.remove("type");
        let inputs_value = table.remove("inputs");

        parsed.type_name = self.check_type(&parsed, type_value);
        parsed.inputs = self.parse_inputs(&parsed, inputs_value);
        let Some(type_name) = &parsed.type_name else {
            return parsed;
        };
        let result = match kind {
            ComponentKind::Source => SourceConfig::parse(type_name, table)
                .map(|result| result.map(ComponentConfig::Source)),
            ComponentKind::Transform => TransformConfig::parse(type_name, table)
                .map(|result| result.map(ComponentConfig::Transform)),
            ComponentKind::Sink => {
                SinkConfig::parse(type_name, table).map(|result| result.map(ComponentConfig::Sink))
            }
        };
        match result {
            Some(Ok(config)) => {
                for problem in validate(&config) {
                    self.field_error(&name, item, line, problem);
                }
                parsed.config = Some(config);
            }
            Some(Err(error)) => self.field_error(&name, item, line, error),
            // check_type accepted it, so the kind's parse knows it.
            None => {}
        }
        parsed
    }

    /// The component's `type`, if present and known.
    pub(super) fn check_type(
        &mut self,
        parsed: &Parsed<'_>,
        value: Option<toml::Value>,
    ) -> Option<String> {
        let kind_name = parsed.kind.as_str();
        let known = types_of(parsed.kind);
        let known_list = format!("known {kind_name} types: {}", known.join(", "));
        let line = locate(&self.lines, parsed.item, "type", parsed.line);
        let type_name = match value {
            None => {
                self.report.error(
                    Some(parsed.line),
                    Some(&parsed.name),
                    Some("type"),
                    format!("missing `type` ({known_list})"),
                );
                return None;
            }
            Some(toml::Value::String(type_name)) => type_name,
            Some(other) => {
                self.report.error(
                    Some(line),
                    Some(&parsed.name),
                    Some("type"),
                    format!(
                        "`type` must be a string, not {} ({known_list})",
                        a_value(&other)
                    ),
                );
                return None;
            }
        };
        if known.contains(&type_name.as_str()) {
            return Some(type_name);
        }
        let mut message = format!("unknown component type \"{type_name}\" ({known_list})");
        if let Some(close) = closest(&type_name, known.iter().copied()) {
            message.push_str(&format!("; did you mean \"{close}\"?"));
        } else if let Some(other) = [
            ComponentKind::Source,
            ComponentKind::Transform,
            ComponentKind::Sink,
        ]
        .into_iter()
        .find(|other| types_of(*other).contains(&type_name.as_str()))
        {
            message.push_str(&format!(
                "; \"{type_name}\" is a {} type, which belongs under [{}]",
                other.as_str(),
                other.section()
            ));
        }
        self.report
            .error(Some(line), Some(&parsed.name), Some("type"), message);
        None
    }

    /// The component's `inputs`: required for transforms and sinks, refused
    /// for sources. Entries that are not usable are reported and left out.
    pub(super) fn parse_inputs(
        &mut self,
        parsed: &Parsed<'_>,
        value: Option<toml::Value>,
    ) -> Vec<Input> {
        let name = parsed.name.as_str();
        let kind = parsed.kind.as_str();
        let inputs_line = locate(&self.lines, parsed.item, "inputs", parsed.line);
        let example = "e.g. inputs = [\"replay\"]";
        let entries = match (parsed.kind, value) {
            (ComponentKind::Source, None) => return Vec::new(),
            (ComponentKind::Source, Some(_)) => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    "a source reads from outside the topology and takes no `inputs`; remove it",
                );
                return Vec::new();
            }
            (_, None) => {
                self.report.error(
                    Some(parsed.line),
                    Some(name),
                    Some("inputs"),
                    format!("missing `inputs`: a {kind} must read from at least one component ({example})"),
                );
                return Vec::new();
            }
            (_, Some(toml::Value::Array(entries))) if entries.is_empty() => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    format!("`inputs` is empty: a {kind} must read from at least one component ({example})"),
                );
                return Vec::new();
            }
            (_, Some(toml::Value::Array(entries))) => entries,
            (_, Some(other)) => {
                self.report.error(
                    Some(inputs_line),
                    Some(name),
                    Some("inputs"),
                    format!(
                        "`inputs` must be an array of component ids, not {} ({example})",
                        a_value(&other)
                    ),
                );
                return Vec::new();
            }
        };

        let mut inputs: Vec<Input> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let line = locate(
                &self.lines,
                parsed.item,
                &format!("inputs[{index}]"),
                inputs_line,
            );
            let text = match entry {
                toml::Value::String(text) => text,
                other => {
                    self.report.error(
                        Some(line),
                        Some(name),
                        Some("inputs"),
                        format!(
                            "input {other} is {}, not a component id string like \"replay\" or \"valid.rejected\"",
                            a_type(&other)
                        ),
                    );
                    continue;
                }
            };
            let input = InputRef::parse(&text);
            if input.component.is_empty() || (text.contains('.') && input.output.is_empty()) {
                self.report.error(
                    Some(line),
                    Some(name),
                    Some("inputs"),
                    format!("input \"{text}\" is not a component id or `id.output`"),
                );
                continue;
            }
            if inputs.iter().any(|seen| seen.input == input) {
                self.report.error(
                    Some(line),
                    Some(name),
                    Some("inputs"),
                    format!("input \"{text}\" is listed twice; every event would arrive twice"),
                );
                continue;
            }
            inputs.push(Input { text, input, line });
        }
        inputs
    }

    /// Steps 5 and 6: ids, inputs, cycles, unread outputs, sources and sinks.
    pub(super) fn check_wiring(&mut self, components: &[Parsed<'_>]) {
        let mut by_id: HashMap<&str, &Parsed<'_>> = HashMap::new();
        for component in components {
            match by_id.get(component.id.as_str()) {
                Some(first) => self.report.error(
                    Some(component.line),
                    Some(&component.name),
                    None,
                    format!(
                        "component id \"{}\" is already used by {} (line {}); ids must be unique \
                         across sources, transforms and sinks",
                        component.id, first.name, first.line
                    ),
                ),
                None => {
                    by_id.insert(&component.id, component);
                }
            }
        }

        for component in components {
            for input in &component.inputs {
                self.check_input(component, input, &by_id);
            }
        }

        let nodes: Vec<(&str, Vec<&str>)> = components
            .iter()
            // Duplicates were reported; wire only the first of each id.
            .filter(|component| std::ptr::eq(by_id[component.id.as_str()], *component))
            .map(|component| {
                let inputs = component
                    .inputs
                    .iter()
                    .map(|input| input.input.component.as_str())
                    .collect();
                (component.id.as_str(), inputs)
            })
            .collect();
        for cycle in crate::config::graph::find_cycles(&nodes) {
            let first = by_id[cycle[0].as_str()];
            self.report.error(
                Some(first.line),
                Some(&first.name),
                Some("inputs"),
                format!(
                    "inputs form a cycle: {}; events would go round forever",
                    cycle.join(" -> ")
                ),
            );
        }

        self.warn_unread_outputs(components);

        for (kind, table) in [
            (ComponentKind::Source, "sources"),
            (ComponentKind::Sink, "sinks"),
        ] {
            if !components.iter().any(|component| component.kind == kind) {
                self.report.error(
                    None,
                    None,
                    None,
                    format!("the topology has no {table}; add at least one [{table}.NAME] table"),
                );
            }
        }
    }

    pub(super) fn check_input(
        &mut self,
        component: &Parsed<'_>,
        input: &Input,
        by_id: &HashMap<&str, &Parsed<'_>>,
    ) {
        let text = &input.text;
        let target_id = input.input.component.as_str();
        let output = input.input.output.as_str();
        let mut fail = |message: String| {
            self.report.error(
                Some(input.line),
                Some(&component.name),
                Some("inputs"),
                message,
            )
        };
        if target_id == component.id {
            return fail(format!(
                "input \"{text}\" is this component itself; a component cannot read its own output"
            ));
        }
        let Some(target) = by_id.get(target_id) else {
            let mut message = format!("input \"{text}\" names no component");
            let mut ids: Vec<&str> = by_id.keys().copied().collect();
            ids.sort_unstable();
            match closest(target_id, ids.iter().copied()) {
                Some(close) => {
                    let suggestion = InputRef {
                        component: close.to_owned(),
                        output: output.to_owned(),
                    };
                    message.push_str(&format!("; did you mean \"{suggestion}\"?"));
                }
                None => message.push_str(&format!(" (components: {})", ids.join(", "))),
            }
            return fail(message);
        };
        if target.kind == ComponentKind::Sink && output.is_empty() {
            return fail(format!(
                "input \"{text}\" is a sink, and sinks have no default output; only the events \
                 it rejects can be read, as \"{text}.{REJECTED}\""
            ));
        }
        // Unknown when the target's table failed to parse: already reported.
        let Some(outputs) = target.outputs() else {
            return;
        };
        if outputs.iter().any(|name| name == output) {
            return;
        }
        let addresses: Vec<String> = outputs
            .iter()
            .map(|name| {
                InputRef {
                    component: target_id.to_owned(),
                    output: name.clone(),
                }
                .to_string()
            })
            .collect();
        let listed = format!("\"{}\"", addresses.join("\", \""));
        let mut message = if output.is_empty() {
            format!(
                "\"{target_id}\" has no default output; read one of its named outputs: {listed}"
            )
        } else {
            format!("\"{target_id}\" has no output \"{output}\" (its outputs: {listed})")
        };
        let close = if output.is_empty() {
            outputs
                .iter()
                .find(|name| *name == "_default")
                .map(String::as_str)
        } else {
            closest(
                output,
                outputs
                    .iter()
                    .map(String::as_str)
                    .filter(|name| !name.is_empty()),
            )
        };
        if let Some(close) = close {
            message.push_str(&format!("; did you mean \"{target_id}.{close}\"?"));
        }
        fail(message);
    }

    /// Warns about outputs of sources and transforms nobody reads: their
    /// events are dropped.
    pub(super) fn warn_unread_outputs(&mut self, components: &[Parsed<'_>]) {
        let read: HashSet<&InputRef> = components
            .iter()
            .flat_map(|component| component.inputs.iter().map(|input| &input.input))
            .collect();
        for component in components {
            if component.kind == ComponentKind::Sink {
                continue;
            }
            for output in component.outputs().unwrap_or_default() {
                if QUIET_OUTPUTS.contains(&output.as_str()) {
                    continue;
                }
                let address = InputRef {
                    component: component.id.clone(),
                    output,
                };
                if read.contains(&address) {
                    continue;
                }
                let what = if address.output.is_empty() {
                    format!("nothing reads from \"{address}\"")
                } else {
                    format!("nothing reads output \"{address}\"")
                };
                self.report.warning(
                    component.line,
                    &component.name,
                    format!("{what}; its events are dropped"),
                );
            }
        }
    }
}

pub(super) fn types_of(kind: ComponentKind) -> &'static [&'static str] {
    match kind {
        ComponentKind::Source => SourceConfig::TYPES,
        ComponentKind::Transform => TransformConfig::TYPES,
        ComponentKind::Sink => SinkConfig::TYPES,
    }
}

pub(super) fn outputs_of(config: &ComponentConfig) -> Vec<String> {
    match config {
        ComponentConfig::Source(config) => config.outputs(),
        ComponentConfig::Transform(config) => config.outputs(),
        ComponentConfig::Sink(config) => config.outputs(),
    }
}

pub(super) fn validate(config: &ComponentConfig) -> Vec<FieldError> {
    match config {
        ComponentConfig::Source(config) => config.validate(),
        ComponentConfig::Transform(config) => config.validate(),
        ComponentConfig::Sink(config) => config.validate(),
    }
}

// ---------------------------------------------------------------------------
// Message helpers.
