//! Reading archives a mailbox can be seeded from without Gmail's quota: the
//! mbox splitter and Google Takeout's entries. The run that stores them is
//! `engine::import`.

pub mod mbox;
pub mod takeout;
