//! The resource types: `DeveloperCenterApplication` and `AcqpAuthorization`.

mod product;

pub use product::Product;
