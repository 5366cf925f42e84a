//! Tags: the named time series a data source holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One time series of a data source (a pressure, a flow, a valve state).
///
/// ```
/// use uplink_model::{DataType, Tag};
///
/// let tag = Tag::new("FIC101.PV", DataType::Float).with_units("m3/h");
/// let json = serde_json::to_value(&tag).unwrap();
/// assert_eq!(json["dataType"], "float");
/// assert_eq!(json["name"], "FIC101.PV");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// Stable identifier within the data source (often the name itself).
    pub id: String,
    /// The name people search for.
    pub name: String,
    /// What the tag measures.
    #[serde(default)]
    pub description: String,
    /// Engineering units (`bar`, `m3/h`, `°C`); empty when unitless.
    #[serde(default)]
    pub units: String,
    /// The kind of value the tag holds.
    pub data_type: DataType,
    /// Further attributes the source knows (span, zero, location…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl Tag {
    /// A tag whose id is its name, with no description, units or properties.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        let name = name.into();
        Self {
            id: name.clone(),
            name,
            description: String::new(),
            units: String::new(),
            data_type,
            properties: BTreeMap::new(),
        }
    }

    /// The same tag with a description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The same tag with engineering units.
    pub fn with_units(mut self, units: impl Into<String>) -> Self {
        self.units = units.into();
        self
    }

    /// The same tag with one more property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

/// The kind of value a tag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DataType {
    /// Floating-point numbers (most analog measurements).
    Float,
    /// Whole numbers (counters).
    Integer,
    /// On/off.
    Boolean,
    /// Named states with numeric codes (valve Open/Closed).
    Digital,
    /// Free text.
    Text,
}
