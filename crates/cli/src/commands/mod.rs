//! One module per verb.

pub(crate) mod explain;
pub(crate) mod schema;
pub(crate) mod validate;
