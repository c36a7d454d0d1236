//! The Alipay+ payment products an ACQP can authorize.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A payment product, spelled as in YAML and on the Developer Center wire.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Product {
    /// Cashier Payment: the user pays on the merchant's checkout page.
    CashierPayment,
    /// Auto Debit: the merchant debits the user's wallet with a prior agreement.
    AutoDebit,
    /// User-presented Mode Payment: the merchant scans the user's payment code.
    UserPresentedModePayment,
    /// Merchant-presented Mode Payment: the user scans the merchant's code.
    MerchantPresentedModePayment,
}

impl Product {
    /// Every product, in the Developer Center console's order.
    pub const ALL: [Product; 4] = [
        Product::CashierPayment,
        Product::AutoDebit,
        Product::UserPresentedModePayment,
        Product::MerchantPresentedModePayment,
    ];

    /// The YAML and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::CashierPayment => "CashierPayment",
            Product::AutoDebit => "AutoDebit",
            Product::UserPresentedModePayment => "UserPresentedModePayment",
            Product::MerchantPresentedModePayment => "MerchantPresentedModePayment",
        }
    }

    /// The name the Developer Center console shows.
    pub fn console_name(self) -> &'static str {
        match self {
            Product::CashierPayment => "Cashier Payment",
            Product::AutoDebit => "Auto Debit",
            Product::UserPresentedModePayment => "User-presented Mode Payment",
            Product::MerchantPresentedModePayment => "Merchant-presented Mode Payment",
        }
    }

    /// `products` for people and logs: their wire spellings, comma-separated.
    pub fn join(products: &[Product]) -> String {
        Self::join_with(products, Product::as_str)
    }

    /// `products` as the console names them, comma-separated.
    pub fn join_console_names(products: &[Product]) -> String {
        Self::join_with(products, Product::console_name)
    }

    fn join_with(products: &[Product], name: fn(Product) -> &'static str) -> String {
        products
            .iter()
            .map(|p| name(*p))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
