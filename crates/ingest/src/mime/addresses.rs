//! From/To/Cc/Bcc/Reply-To → flat lists of `Address` (groups flattened, every
//! occurrence of a repeated header kept, in order).

use mail_parser::{HeaderName, HeaderValue, Message};
use serde::{Deserialize, Serialize};

use super::text::clean_opt;

/// One mailbox from an address header. Either half may be missing in real mail
/// (`undisclosed-recipients:;`, a bare display name, a bare address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name, encoded words decoded.
    pub name: Option<String>,
    /// The addr-spec as written (not lowercased: the local part is case-sensitive).
    pub address: Option<String>,
}

/// Collects every address in every `name` header of the top-level message.
pub(crate) fn collect(message: &Message<'_>, name: HeaderName<'static>) -> Vec<Address> {
    let mut out = Vec::new();
    for value in message.header_values(name) {
        let HeaderValue::Address(address) = value else {
            continue;
        };
        match address {
            mail_parser::Address::List(list) => push_all(&mut out, list),
            mail_parser::Address::Group(groups) => {
                for group in groups {
                    push_all(&mut out, &group.addresses);
                }
            }
        }
    }
    out
}

fn push_all(out: &mut Vec<Address>, list: &[mail_parser::Addr<'_>]) {
    for addr in list {
        let address = Address {
            name: clean_opt(addr.name.as_deref()),
            address: clean_opt(addr.address.as_deref()),
        };
        if address.name.is_some() || address.address.is_some() {
            out.push(address);
        }
    }
}
