//! Field paths and field errors in the apiserver's own words (`k8s.io/apimachinery/pkg/util/validation/field`).

use std::fmt;

/// A path to a field inside an object, rendered as the apiserver renders it: `spec.ingress[0].ports[1].endPort`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_owned())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() { Path(name.to_owned()) } else { Path(format!("{}.{name}", self.0)) }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// A map key, rendered `[key]` as the apiserver does for label maps.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bad value as the apiserver prints it: strings quoted, numbers bare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    Str(String),
    Int(i64),
    /// Printed verbatim (lists and the like).
    Raw(String),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => write!(f, "{s:?}"),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Raw(s) => f.write_str(s),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_owned())
    }
}
impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue::Str(s)
    }
}
impl From<i32> for BadValue {
    fn from(i: i32) -> Self {
        BadValue::Int(i.into())
    }
}
impl From<i64> for BadValue {
    fn from(i: i64) -> Self {
        BadValue::Int(i)
    }
}

/// The kinds of field error the NetworkPolicy validation produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Forbidden,
    Invalid(BadValue),
    NotSupported { value: BadValue, supported: Vec<String> },
}

/// One validation error: `spec.ingress[0].from[0]: Required value: must specify a peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Path,
    pub kind: ErrorType,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: Path, detail: &str) -> Self {
        FieldError { field, kind: ErrorType::Required, detail: detail.to_owned() }
    }
    pub fn forbidden(field: Path, detail: &str) -> Self {
        FieldError { field, kind: ErrorType::Forbidden, detail: detail.to_owned() }
    }
    pub fn invalid(field: Path, value: impl Into<BadValue>, detail: &str) -> Self {
        FieldError { field, kind: ErrorType::Invalid(value.into()), detail: detail.to_owned() }
    }
    pub fn not_supported(field: Path, value: impl Into<BadValue>, supported: &[&str]) -> Self {
        FieldError {
            field,
            kind: ErrorType::NotSupported {
                value: value.into(),
                supported: supported.iter().map(|s| (*s).to_owned()).collect(),
            },
            detail: String::new(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match &self.kind {
            ErrorType::Required => f.write_str("Required value")?,
            ErrorType::Forbidden => f.write_str("Forbidden")?,
            ErrorType::Invalid(v) => write!(f, "Invalid value: {v}")?,
            ErrorType::NotSupported { value, supported } => {
                write!(f, "Unsupported value: {value}")?;
                if !supported.is_empty() {
                    let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                    write!(f, ": supported values: {}", quoted.join(", "))?;
                }
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_apiserver() {
        let p = Path::new("spec").child("ingress").index(0).child("ports").index(0);
        let e = FieldError::invalid(p.child("endPort"), 80, "must be greater than or equal to `port`");
        assert_eq!(
            e.to_string(),
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"
        );
        let e = FieldError::not_supported(p.child("protocol"), "ICMP", &["SCTP", "TCP", "UDP"]);
        assert_eq!(
            e.to_string(),
            r#"spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#
        );
        assert_eq!(
            FieldError::required(Path::new("spec.ingress[0].from[0]"), "must specify a peer").to_string(),
            "spec.ingress[0].from[0]: Required value: must specify a peer"
        );
        assert_eq!(FieldError::required(Path::new("x").child("cidr"), "").to_string(), "x.cidr: Required value");
    }
}
