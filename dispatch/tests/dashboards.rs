//! The Grafana dashboards and Prometheus rules in `dashboards/` against what the service
//! exports: every metric a query names is declared in `dispatch::metrics::DECLARED` (with a
//! suffix its kind has) and every label it matches on is one of that metric's, every
//! recording rule a query uses is defined, the dashboards import anywhere (a data-source
//! variable, no hard-coded data source), and promtool accepts the rules, passes their unit
//! tests and parses every dashboard query. promtool comes from Debian's `prometheus`
//! package, which `scripts/test.sh` installs; without it these tests fail, never skip.

use dispatch::metrics::{DECLARED, Kind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use yaml_rust2::{Yaml, YamlLoader};

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

fn rules_path() -> PathBuf {
    dashboards_dir().join("prometheus/rules.yml")
}

fn rules_test_path() -> PathBuf {
    dashboards_dir().join("prometheus/rules_test.yml")
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool").args(args).output().expect(
        "promtool not found: run scripts/test.sh, which installs Debian's prometheus package",
    )
}

fn promtool_passes(args: &[&str]) -> String {
    let output = promtool(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

// ---------------------------------------------------------------------------------------
// What a PromQL expression names
// ---------------------------------------------------------------------------------------

/// What a PromQL expression refers to, found by a scanner that knows just enough PromQL to
/// tell a metric from a function, a keyword or a label: strings, `[…]` ranges, `{…}`
/// matchers, calls and grouping clauses. Grafana's `$variables` are collected wherever they
/// appear, strings included.
#[derive(Debug, Default, PartialEq)]
struct Refs {
    /// Names in selector position: metrics and recording rules.
    metrics: Vec<String>,
    /// Label names in matchers, with the selector's metric (`None` for a bare `{…}`).
    matchers: Vec<(Option<String>, String)>,
    /// Label names in `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`.
    grouping: Vec<String>,
    /// Grafana variables: `$name`, `${name}`, `${name:format}`.
    variables: Vec<String>,
}

/// Words that are operators or literals, never metric names.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Words followed by a parenthesised list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_whitespace(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// The index of the first `close` at or after `from`.
fn find(chars: &[char], from: usize, close: char, expr: &str) -> Result<usize, String> {
    (from..chars.len())
        .find(|&i| chars[i] == close)
        .ok_or_else(|| format!("no `{close}` closes the one at {from} in `{expr}`"))
}

/// A quoted string starting at `start`: its contents and the index after it.
fn string(chars: &[char], start: usize, expr: &str) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == '\\' && quote != '`' {
            i += 1;
            out.extend(chars.get(i));
        } else {
            out.push(c);
        }
        i += 1;
    }
    Err(format!("unterminated string in `{expr}`"))
}

/// The Grafana variable starting at the `$` at `at`, if one does, and the index after it.
/// `$1` is a regex back-reference (in `label_replace`), not a variable.
fn variable_at(chars: &[char], at: usize) -> (Option<String>, usize) {
    let braced = chars.get(at + 1) == Some(&'{');
    let start = at + 1 + usize::from(braced);
    let mut end = start;
    while chars
        .get(end)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_')
    {
        end += 1;
    }
    if braced {
        // `${name}` or `${name:format}`.
        end = (end..chars.len())
            .find(|&i| chars[i] == '}')
            .map_or(end, |i| i + 1);
    }
    let name: String = chars[start..end]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || c == '_')
        .collect();
    let is_variable = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    (is_variable.then_some(name), end.max(at + 1))
}

fn collect_variables(text: &str, into: &mut Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let (name, next) = variable_at(&chars, i);
            into.extend(name);
            i = next;
        } else {
            i += 1;
        }
    }
}

fn scan(expr: &str) -> Result<Refs, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut refs = Refs::default();
    // The metric just read, which a following `{…}` belongs to.
    let mut selector: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let (text, next) = string(&chars, i, expr)?;
            collect_variables(&text, &mut refs.variables);
            selector = None;
            i = next;
        } else if c == '#' {
            i = find(&chars, i, '\n', expr).unwrap_or(chars.len());
        } else if c == '[' {
            // Ranges and subqueries: durations, and Grafana's interval variables.
            let end = find(&chars, i, ']', expr)?;
            collect_variables(
                &chars[i + 1..end].iter().collect::<String>(),
                &mut refs.variables,
            );
            i = end + 1;
        } else if c == '{' {
            i = matchers(&chars, i, selector.take(), expr, &mut refs)?;
        } else if c == '$' {
            let (name, next) = variable_at(&chars, i);
            refs.variables.extend(name);
            selector = None;
            i = next;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and durations (`0.9`, `1e3`, `5m`): never names.
            while chars
                .get(i)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '.')
            {
                i += 1;
            }
            selector = None;
        } else if is_ident_start(c) {
            let start = i;
            while chars.get(i).is_some_and(|&c| is_ident(c)) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after = skip_whitespace(&chars, i);
            let next_word: String = chars[after..]
                .iter()
                .take_while(|&&c| is_ident(c))
                .collect();
            // A call, or an aggregation whose grouping comes first: `sum by (le) (…)`.
            let paren = chars.get(after) == Some(&'(');
            let called = paren || next_word == "by" || next_word == "without";
            selector = None;
            if GROUPING.contains(&word.as_str()) {
                if paren {
                    let end = find(&chars, after, ')', expr)?;
                    let list: String = chars[after + 1..end].iter().collect();
                    refs.grouping.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|label| !label.is_empty())
                            .map(String::from),
                    );
                    i = end + 1;
                }
            } else if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) || called {
                // An operator, or a function or aggregation being called.
            } else {
                refs.metrics.push(word.clone());
                selector = Some(word);
            }
        } else {
            if !c.is_whitespace() {
                selector = None;
            }
            i += 1;
        }
    }
    Ok(refs)
}

/// The matchers of the `{` at `open`: `label op "value"`, separated by commas.
fn matchers(
    chars: &[char],
    open: usize,
    metric: Option<String>,
    expr: &str,
    refs: &mut Refs,
) -> Result<usize, String> {
    let mut i = skip_whitespace(chars, open + 1);
    loop {
        match chars.get(i) {
            Some('}') => return Ok(i + 1),
            None => return Err(format!("no `}}` closes the `{{` at {open} in `{expr}`")),
            Some(_) => {}
        }
        let start = i;
        while chars.get(i).is_some_and(|&c| is_ident(c)) {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        if label.is_empty() {
            return Err(format!("a matcher without a label name in `{expr}`"));
        }
        if label == "__name__" {
            return Err(format!(
                "`{expr}` selects by __name__: write the metric's name so that it can be checked"
            ));
        }
        i = skip_whitespace(chars, i);
        while chars.get(i).is_some_and(|&c| matches!(c, '=' | '!' | '~')) {
            i += 1;
        }
        i = skip_whitespace(chars, i);
        if !chars
            .get(i)
            .is_some_and(|&c| c == '"' || c == '\'' || c == '`')
        {
            return Err(format!("matcher `{label}` has no quoted value in `{expr}`"));
        }
        let (value, next) = string(chars, i, expr)?;
        collect_variables(&value, &mut refs.variables);
        refs.matchers.push((metric.clone(), label));
        i = skip_whitespace(chars, next);
        if chars.get(i) == Some(&',') {
            i = skip_whitespace(chars, i + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the service exports, and what the rules record
// ---------------------------------------------------------------------------------------

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];
/// Series Prometheus makes itself, with their labels beyond the target's.
const PROMETHEUS_SERIES: &[(&str, &[&str])] = &[
    ("up", &[]),
    // One series per pending or firing alert, with the alert's labels.
    (
        "ALERTS",
        &["alertname", "alertstate", "severity", "stage", "area_class"],
    ),
];
/// Variables Grafana defines on every dashboard.
const GRAFANA_VARIABLES: &[&str] = &["__rate_interval", "__interval", "__range"];

/// The names a query may use: the declared metrics and the recording rules.
struct Catalogue {
    /// Recording rule name → the labels it keeps (its grouping labels).
    records: BTreeMap<String, BTreeSet<String>>,
}

impl Catalogue {
    fn new(records: BTreeMap<String, BTreeSet<String>>) -> Self {
        Catalogue { records }
    }

    /// The labels of the series named `name`, or why it is not a series Prometheus holds.
    fn labels_of(&self, name: &str) -> Result<BTreeSet<String>, String> {
        let set = |labels: &[&str], extra: &[&str]| -> BTreeSet<String> {
            labels
                .iter()
                .chain(extra)
                .chain(TARGET_LABELS)
                .map(|label| label.to_string())
                .collect()
        };
        if name.contains(':') {
            return self
                .records
                .get(name)
                .cloned()
                .ok_or_else(|| format!("recording rule {name} is not defined in rules.yml"));
        }
        if let Some((_, labels)) = PROMETHEUS_SERIES.iter().find(|(n, _)| *n == name) {
            return Ok(set(labels, &[]));
        }
        if let Some(&(_, kind, labels, _)) = DECLARED.iter().find(|(n, ..)| *n == name) {
            return match kind {
                Kind::Histogram => Err(format!(
                    "{name} is a histogram: query {name}_bucket, _sum or _count"
                )),
                Kind::Counter | Kind::Gauge => Ok(set(labels, &[])),
            };
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            if let Some(&(_, kind, labels, _)) = DECLARED.iter().find(|(n, ..)| *n == base) {
                return match kind {
                    Kind::Histogram if suffix == "_bucket" => Ok(set(labels, &["le"])),
                    Kind::Histogram => Ok(set(labels, &[])),
                    Kind::Counter | Kind::Gauge => Err(format!(
                        "{name}: {base} is a {kind:?}, which has no {suffix} series"
                    )),
                };
            }
        }
        Err(format!(
            "{name} is not a metric the service exports (dispatch::metrics::DECLARED)"
        ))
    }

    /// Every label any series may have, for grouping clauses (whose series is the inner
    /// expression's, not one name).
    fn all_labels(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = ["le"]
            .iter()
            .chain(TARGET_LABELS)
            .map(|l| l.to_string())
            .collect();
        for (_, _, labels, _) in DECLARED {
            all.extend(labels.iter().map(|l| l.to_string()));
        }
        for (_, labels) in PROMETHEUS_SERIES {
            all.extend(labels.iter().map(|l| l.to_string()));
        }
        all
    }

    /// What is wrong with `expr` (empty when nothing is), given the variables defined
    /// where it is used. Recording rules it names are returned in `used`.
    fn check(
        &self,
        expr: &str,
        variables: &BTreeSet<String>,
        used: &mut BTreeSet<String>,
    ) -> Vec<String> {
        let refs = match scan(expr) {
            Ok(refs) => refs,
            Err(error) => return vec![error],
        };
        let mut errors = Vec::new();
        for metric in &refs.metrics {
            if metric.contains(':') {
                used.insert(metric.clone());
            }
            if let Err(error) = self.labels_of(metric) {
                errors.push(error);
            }
        }
        let all = self.all_labels();
        for (metric, label) in &refs.matchers {
            let known = match metric {
                Some(metric) => match self.labels_of(metric) {
                    Ok(labels) => labels,
                    // Already reported above.
                    Err(_) => continue,
                },
                None => all.clone(),
            };
            if !known.contains(label) {
                errors.push(format!(
                    "label {label} is not one of {}'s: {known:?}",
                    metric.as_deref().unwrap_or("any series")
                ));
            }
        }
        for label in &refs.grouping {
            if !all.contains(label) {
                errors.push(format!("no series has the label {label}"));
            }
        }
        for variable in &refs.variables {
            if !variables.contains(variable) && !GRAFANA_VARIABLES.contains(&variable.as_str()) {
                errors.push(format!("variable ${variable} is not defined"));
            }
        }
        errors
            .into_iter()
            .map(|error| format!("{error}\n    in `{expr}`"))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The rule files
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    for_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

fn string_map(yaml: &Yaml) -> BTreeMap<String, String> {
    yaml.as_hash()
        .map(|hash| {
            hash.iter()
                .map(|(k, v)| {
                    let text = |y: &Yaml| match y {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("not a scalar: {other:?}"),
                    };
                    (text(k), text(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rules() -> Vec<Rule> {
    let doc = load_yaml(&rules_path());
    let groups = doc["groups"].as_vec().expect("rules.yml has `groups`");
    let mut rules = Vec::new();
    for group in groups {
        let name = group["name"].as_str().expect("every group has a name");
        for rule in group["rules"].as_vec().expect("every group has rules") {
            let text = |key: &str| rule[key].as_str().map(String::from);
            rules.push(Rule {
                record: text("record"),
                alert: text("alert"),
                expr: text("expr").unwrap_or_else(|| panic!("a rule of {name} has no expr")),
                for_: text("for"),
                labels: string_map(&rule["labels"]),
                annotations: string_map(&rule["annotations"]),
            });
        }
    }
    rules
}

/// Recording rule name → the labels it keeps, from its grouping clauses.
fn records(rules: &[Rule]) -> BTreeMap<String, BTreeSet<String>> {
    rules
        .iter()
        .filter_map(|rule| {
            let name = rule.record.clone()?;
            let refs = scan(&rule.expr).unwrap_or_default();
            Some((name, refs.grouping.into_iter().collect()))
        })
        .collect()
}

/// A Prometheus duration (`90s`, `1h30m`) in seconds.
fn seconds(duration: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    let mut chars = duration.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = std::mem::take(&mut number).parse().ok()?;
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0
            }
            ('s', _) => 1,
            ('m', _) => 60,
            ('h', _) => 3_600,
            ('d', _) => 86_400,
            ('w', _) => 604_800,
            _ => return None,
        };
        total += value * unit;
    }
    number.is_empty().then_some(total)
}

// ---------------------------------------------------------------------------------------
// The dashboards
// ---------------------------------------------------------------------------------------

fn dashboards() -> Vec<(String, Value)> {
    let dir = dashboards_dir().join("grafana");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a dashboard file");
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .map(|list| list.iter().collect())
        .unwrap_or_default()
}

/// A query, where it is, and the Grafana variables it may use.
struct Query {
    place: String,
    expr: String,
}

/// Every PromQL expression of a dashboard: panel targets and annotation queries. Variable
/// queries (`label_values(…)`) are returned apart, as (place, selector, label).
fn queries(name: &str, dashboard: &Value) -> (Vec<Query>, Vec<(String, String, String)>) {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!(
                    "{name}: panel \"{}\"",
                    panel["title"].as_str().unwrap_or("?")
                ),
                expr: target["expr"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push(Query {
                place: format!(
                    "{name}: annotation \"{}\"",
                    annotation["name"].as_str().unwrap_or("?")
                ),
                expr: expr.to_owned(),
            });
        }
    }
    let mut label_values = Vec::new();
    for variable in variables(dashboard) {
        if variable["type"] != "query" {
            continue;
        }
        let query = match &variable["query"] {
            Value::String(query) => query.clone(),
            query => query["query"].as_str().unwrap_or_default().to_owned(),
        };
        let place = format!("{name}: variable {}", variable["name"]);
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|args| args.rsplit_once(','));
        match inner {
            Some((selector, label)) => {
                label_values.push((place, selector.trim().to_owned(), label.trim().to_owned()))
            }
            None => label_values.push((place, query, String::new())),
        }
    }
    (out, label_values)
}

/// Every object under a `datasource` key, anywhere in the dashboard.
fn datasource_refs<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "datasource" {
                    out.push(child);
                }
                datasource_refs(child, out);
            }
        }
        Value::Array(list) => list.iter().for_each(|child| datasource_refs(child, out)),
        _ => {}
    }
}

/// What is wrong with a dashboard's shape: what Grafana needs to import it anywhere and
/// lay it out.
fn shape_errors(name: &str, dashboard: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut error = |message: String| errors.push(format!("{name}: {message}"));
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            error(format!("no `{key}`"));
        }
    }
    if dashboard["uid"].as_str().is_some_and(|uid| uid.len() > 40) {
        error("`uid` is over Grafana's 40 characters".into());
    }
    if dashboard["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        error("`schemaVersion` under 36: data sources are not referenced by uid".into());
    }
    if dashboard["id"] != Value::Null {
        error("`id` must be null: it is the id in one Grafana's database".into());
    }

    // Importable anywhere: one Prometheus input for the import dialog, a data-source
    // variable, and every data-source reference through that variable.
    let inputs: Vec<&str> = dashboard["__inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|input| input["type"] == "datasource" && input["pluginId"] == "prometheus")
        .filter_map(|input| input["name"].as_str())
        .collect();
    if inputs.is_empty() {
        error("no Prometheus data source in `__inputs` for the import dialog".into());
    }
    let text = dashboard.to_string();
    for (start, _) in text.match_indices("${DS_") {
        let placeholder = &text[start + 2..];
        let input = &placeholder[..placeholder.find('}').unwrap_or(0)];
        if !inputs.contains(&input) {
            error(format!("${{{input}}} is not declared in `__inputs`"));
        }
    }
    let datasource_variable = variables(dashboard).into_iter().any(|variable| {
        variable["name"] == "datasource"
            && variable["type"] == "datasource"
            && variable["query"] == "prometheus"
    });
    if !datasource_variable {
        error("no `datasource` variable of type datasource for Prometheus".into());
    }
    let mut refs = Vec::new();
    datasource_refs(dashboard, &mut refs);
    for reference in refs {
        if reference["uid"] != "${datasource}" || reference["type"] != "prometheus" {
            error(format!(
                "data source {reference} is not the Prometheus `${{datasource}}` variable"
            ));
        }
    }

    // Panels Grafana can lay out and query.
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut overlaps = BTreeSet::new();
    let top: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if top.is_empty() {
        error("no panels".into());
    }
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        if title.is_empty() {
            error(format!("a panel without a title: {}", panel["id"]));
        }
        match panel["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            _ => error(format!("panel \"{title}\": missing or repeated id")),
        }
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|key| grid[key].as_u64());
        let (Some(h), Some(w), Some(x), Some(y)) = (h, w, x, y) else {
            error(format!(
                "panel \"{title}\": gridPos needs integers h, w, x, y"
            ));
            continue;
        };
        if h == 0 || w == 0 || x + w > 24 {
            error(format!(
                "panel \"{title}\": gridPos {grid} is outside the 24 columns"
            ));
        }
        if top.iter().any(|p| std::ptr::eq(*p, panel)) {
            for cell_x in x..x + w {
                for cell_y in y..y + h {
                    if let Some(other) = cells.insert((cell_x, cell_y), title.to_owned()) {
                        overlaps.insert((other, title.to_owned()));
                    }
                }
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        if panel["type"].as_str().is_none_or(str::is_empty) {
            error(format!("panel \"{title}\": no type"));
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            error(format!("panel \"{title}\": no targets"));
        }
        let mut ref_ids = BTreeSet::new();
        for target in targets {
            if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                error(format!("panel \"{title}\": a target without `expr`"));
            }
            if !target["refId"]
                .as_str()
                .is_some_and(|r| ref_ids.insert(r.to_owned()))
            {
                error(format!("panel \"{title}\": missing or repeated refId"));
            }
        }
    }
    for (one, other) in overlaps {
        error(format!("panels \"{one}\" and \"{other}\" overlap"));
    }
    errors.dedup();
    errors
}

/// Recording rule names the dashboards use; fails on any unknown metric, label or variable.
fn check_dashboards(catalogue: &Catalogue) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut errors = Vec::new();
    for (name, dashboard) in dashboards() {
        let defined: BTreeSet<String> = variables(&dashboard)
            .iter()
            .filter_map(|variable| variable["name"].as_str().map(String::from))
            .collect();
        let (queries, label_values) = queries(&name, &dashboard);
        for query in queries {
            for error in catalogue.check(&query.expr, &defined, &mut used) {
                errors.push(format!("{}: {error}", query.place));
            }
        }
        for (place, selector, label) in label_values {
            if label.is_empty() {
                errors.push(format!(
                    "{place}: only label_values(metric, label) queries are checked: {selector}"
                ));
                continue;
            }
            for error in catalogue.check(&selector, &defined, &mut used) {
                errors.push(format!("{place}: {error}"));
            }
            let metric = scan(&selector)
                .ok()
                .and_then(|refs| refs.metrics.first().cloned());
            let labels = metric
                .as_deref()
                .and_then(|metric| catalogue.labels_of(metric).ok())
                .unwrap_or_default();
            if !labels.contains(&label) {
                errors.push(format!("{place}: {selector} has no label {label}"));
            }
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
    used
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn promtool_checks_the_rules() {
    let output = promtool_passes(&[
        "check",
        "rules",
        rules_path().to_str().expect("a UTF-8 path"),
    ]);
    assert!(output.contains("SUCCESS"), "{output}");
}

#[test]
fn promtool_passes_the_rules_unit_tests() {
    let output = promtool_passes(&[
        "test",
        "rules",
        rules_test_path().to_str().expect("a UTF-8 path"),
    ]);
    assert!(output.contains("SUCCESS"), "{output}");
}

#[test]
fn the_three_dashboards_are_importable_grafana_dashboards() {
    let dashboards = dashboards();
    let names: BTreeSet<&str> = dashboards.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["sla-overview.json", "crews-and-queue.json", "storm.json"] {
        assert!(names.contains(expected), "{expected} is missing: {names:?}");
    }
    let errors: Vec<String> = dashboards
        .iter()
        .flat_map(|(name, dashboard)| shape_errors(name, dashboard))
        .collect();
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
    let uids: BTreeSet<&str> = dashboards
        .iter()
        .filter_map(|(_, dashboard)| dashboard["uid"].as_str())
        .collect();
    assert_eq!(uids.len(), dashboards.len(), "dashboard uids are unique");
}

#[test]
fn dashboards_and_rules_name_only_what_the_service_exports() {
    let rules = rules();
    let catalogue = Catalogue::new(records(&rules));
    let from_dashboards = check_dashboards(&catalogue);

    let mut from_rules = BTreeSet::new();
    let errors: Vec<String> = rules
        .iter()
        .flat_map(|rule| {
            let name = rule.record.as_ref().or(rule.alert.as_ref()).cloned();
            let name = name.unwrap_or_default();
            catalogue
                .check(&rule.expr, &BTreeSet::new(), &mut from_rules)
                .into_iter()
                .map(move |error| format!("rule {name}: {error}"))
        })
        .collect();
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));

    // A recording rule nobody reads is load on Prometheus for nothing.
    for record in catalogue.records.keys() {
        assert!(
            from_dashboards.contains(record) || from_rules.contains(record),
            "recording rule {record} is used by no dashboard and no rule"
        );
    }
}

#[test]
fn every_rule_is_well_formed_and_every_alert_says_what_to_do() {
    let rules = rules();
    let mut names = BTreeSet::new();
    for rule in &rules {
        let (name, is_alert) = match (&rule.record, &rule.alert) {
            (Some(record), None) => (record, false),
            (None, Some(alert)) => (alert, true),
            _ => panic!("a rule needs exactly one of record and alert: {rule:?}"),
        };
        assert!(names.insert(name.clone()), "{name} is defined twice");
        if !is_alert {
            // level:metric:operations, the Prometheus naming convention.
            assert_eq!(
                name.matches(':').count(),
                2,
                "{name}: level:metric:operations"
            );
            continue;
        }
        assert!(
            name.starts_with("Dispatch"),
            "{name}: alerts start with Dispatch"
        );
        let for_ = rule.for_.as_deref().and_then(seconds);
        assert!(
            for_.is_some_and(|s| s >= 60),
            "{name}: `for:` of at least a minute, so that one scrape does not page ({:?})",
            rule.for_
        );
        assert!(
            matches!(
                rule.labels.get("severity").map(String::as_str),
                Some("critical" | "warning")
            ),
            "{name}: severity critical or warning"
        );
        for key in ["summary", "description"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|text| text.len() > 20),
                "{name}: an annotation `{key}` an operator can act on"
            );
        }
    }
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test_and_every_record_a_value_test() {
    let rules = rules();
    let catalogue = Catalogue::new(records(&rules));
    let doc = load_yaml(&rules_test_path());
    let files: Vec<&str> = doc["rule_files"]
        .as_vec()
        .expect("rules_test.yml has rule_files")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(files, ["rules.yml"]);

    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut valued = BTreeSet::new();
    let mut errors = Vec::new();
    for test in doc["tests"].as_vec().expect("rules_test.yml has tests") {
        for series in test["input_series"].as_vec().into_iter().flatten() {
            // The tests feed the service's own metric names and labels.
            let selector = series["series"].as_str().expect("a series selector");
            errors.extend(catalogue.check(selector, &BTreeSet::new(), &mut BTreeSet::new()));
        }
        for case in test["alert_rule_test"].as_vec().into_iter().flatten() {
            let alert = case["alertname"].as_str().expect("an alertname").to_owned();
            match case["exp_alerts"].as_vec() {
                Some(alerts) if !alerts.is_empty() => firing.insert(alert),
                _ => quiet.insert(alert),
            };
        }
        for case in test["promql_expr_test"].as_vec().into_iter().flatten() {
            let expr = case["expr"].as_str().expect("an expr");
            errors.extend(catalogue.check(expr, &BTreeSet::new(), &mut valued));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
    for rule in &rules {
        if let Some(alert) = &rule.alert {
            assert!(firing.contains(alert), "no unit test where {alert} fires");
            assert!(
                quiet.contains(alert),
                "no unit test where {alert} stays quiet"
            );
        }
        if let Some(record) = &rule.record {
            assert!(
                valued.contains(record),
                "no promql_expr_test checks the values of {record}"
            );
        }
    }
}

/// Every dashboard query through Prometheus's own parser: each is written, with Grafana's
/// variables replaced by values, as a recording rule that `promtool check rules` parses.
#[test]
fn promtool_parses_every_dashboard_query() {
    let mut file = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    let mut places = Vec::new();
    for (name, dashboard) in dashboards() {
        // Interval variables take their current value; the rest appear only inside
        // strings (`station=~"$station"`), where any text parses.
        let mut values: Vec<(String, String)> = vec![
            ("$__rate_interval".into(), "5m".into()),
            ("$__interval".into(), "1m".into()),
            ("$__range".into(), "1d".into()),
        ];
        for variable in variables(&dashboard) {
            if variable["type"] == "interval" {
                values.push((
                    format!("${}", variable["name"].as_str().expect("a variable name")),
                    variable["current"]["value"]
                        .as_str()
                        .expect("a current value")
                        .to_owned(),
                ));
            }
        }
        for query in queries(&name, &dashboard).0 {
            let expr = values
                .iter()
                .fold(query.expr.clone(), |expr, (variable, value)| {
                    expr.replace(variable, value)
                });
            file.push_str(&format!(
                "      - record: dashboard_query_{}\n        expr: {}\n",
                places.len(),
                serde_json::to_string(&expr).expect("a JSON string")
            ));
            places.push(format!(
                "dashboard_query_{}: {}: {expr}",
                places.len(),
                query.place
            ));
        }
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, &file).expect("writing the queries");
    let output = promtool(&["check", "rules", path.to_str().expect("a UTF-8 path")]);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // promtool names the generated rule; say which panel's query that is.
    let culprits: Vec<&String> = places
        .iter()
        .enumerate()
        .filter(|(n, _)| report.contains(&format!("\"dashboard_query_{n}\"")))
        .map(|(_, place)| place)
        .collect();
    assert!(
        output.status.success(),
        "promtool cannot parse a dashboard query:\n{report}\n{culprits:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The checker itself: it must refuse what it is there to catch.
// ---------------------------------------------------------------------------------------

fn catalogue_for_tests() -> Catalogue {
    Catalogue::new(BTreeMap::from([(
        "stage:dispatch_sla_compliance:ratio1d".to_owned(),
        BTreeSet::from(["stage".to_owned()]),
    )]))
}

fn errors_of(expr: &str) -> Vec<String> {
    let variables = BTreeSet::from(["station".to_owned(), "window".to_owned()]);
    catalogue_for_tests().check(expr, &variables, &mut BTreeSet::new())
}

#[test]
fn the_scanner_tells_metrics_from_functions_keywords_and_labels() {
    let refs = scan(
        r#"histogram_quantile(0.9, sum by (area_class, le) (rate(dispatch_report_to_arrival_seconds_bucket{station=~"$station", le!="+Inf"}[$__rate_interval])))
           / on (area_class) group_left sum without (instance) (dispatch_queued_tickets offset 5m) > bool 0.5
           and stage:dispatch_sla_compliance:ratio1d {stage="arrive"} # a comment naming dispatch_nothing
           or deriv(up[10m:1m]) or vector(1e3) or label_replace(up, "dst", "$1", "src", "(.*)")"#,
    )
    .expect("it scans");
    assert_eq!(
        refs.metrics,
        [
            "dispatch_report_to_arrival_seconds_bucket",
            "dispatch_queued_tickets",
            "stage:dispatch_sla_compliance:ratio1d",
            "up",
            "up",
        ]
    );
    assert_eq!(
        refs.matchers,
        [
            (
                Some("dispatch_report_to_arrival_seconds_bucket".to_owned()),
                "station".to_owned()
            ),
            (
                Some("dispatch_report_to_arrival_seconds_bucket".to_owned()),
                "le".to_owned()
            ),
            (
                Some("stage:dispatch_sla_compliance:ratio1d".to_owned()),
                "stage".to_owned()
            ),
        ]
    );
    assert_eq!(
        refs.grouping,
        ["area_class", "le", "area_class", "instance"]
    );
    assert_eq!(refs.variables, ["station", "__rate_interval"]);
}

#[test]
fn the_checker_accepts_declared_metrics_with_their_suffixes_and_labels() {
    for expr in [
        r#"sum by (stage, area_class) (rate(dispatch_sla_total{result="met"}[5m]))"#,
        r#"histogram_quantile(0.5, sum by (le) (rate(dispatch_report_to_arrival_seconds_bucket{station=~"$station"}[$window])))"#,
        "sum(rate(dispatch_engine_decision_seconds_sum[5m])) / sum(rate(dispatch_engine_decision_seconds_count[5m]))",
        r#"stage:dispatch_sla_compliance:ratio1d{stage="arrive"}"#,
        r#"up{job="dispatch"} == 0 and on (job, instance) dispatch_store_failed == 1"#,
    ] {
        assert_eq!(errors_of(expr), Vec::<String>::new(), "{expr}");
    }
}

#[test]
fn the_checker_refuses_what_the_service_does_not_export() {
    for (expr, why) in [
        (
            "rate(dispatch_sla_totl[5m])",
            "dispatch_sla_totl is not a metric",
        ),
        (
            "rate(dispatch_report_to_arrival_seconds[5m])",
            "is a histogram: query",
        ),
        (
            "rate(dispatch_sla_total_bucket[5m])",
            "is a Counter, which has no _bucket",
        ),
        (
            r#"dispatch_queued_tickets{station="441302-10"}"#,
            "label station is not one of dispatch_queued_tickets's",
        ),
        (
            "sum by (stations) (dispatch_crews)",
            "no series has the label stations",
        ),
        (
            "stage_area_class:dispatch_sla_compliance:ratio1w",
            "is not defined in rules.yml",
        ),
        (
            r#"dispatch_report_to_arrival_seconds_count{station=~"$statoin"}"#,
            "variable $statoin is not defined",
        ),
        (r#"{__name__=~"dispatch_.*"}"#, "selects by __name__"),
        ("dispatch_queued_tickets{", "no `}`"),
    ] {
        let errors = errors_of(expr);
        assert!(
            errors.iter().any(|error| error.contains(why)),
            "`{expr}` should be refused with \"{why}\": {errors:?}"
        );
    }
}

#[test]
fn durations_read_as_prometheus_writes_them() {
    assert_eq!(seconds("90s"), Some(90));
    assert_eq!(seconds("15m"), Some(900));
    assert_eq!(seconds("1h30m"), Some(5_400));
    assert_eq!(seconds("500ms"), Some(0));
    assert_eq!(seconds("10"), None);
    assert_eq!(seconds("1x"), None);
}
