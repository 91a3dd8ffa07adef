//! The client's quota tables and the emulator's are two copies of Google's (the emulator
//! plays Google and depends on none of our crates): they must agree method for method, or
//! every figure the tests prove through the emulator's counters proves the wrong thing.

use gmail::{Method, QuotaTable};
use gmail_emulator::QuotaTable as EmulatorTable;

fn emulator_table(t: QuotaTable) -> EmulatorTable {
    t.name().parse().expect("the emulator knows every table")
}

#[test]
fn client_and_emulator_charge_alike() {
    for table in QuotaTable::ALL {
        let emu = emulator_table(table);
        for m in Method::ALL {
            // The emulator names methods by their REST path: users.messages.get, users.getProfile.
            let path = match m.name() {
                "users.getProfile" => "users.getProfile".to_string(),
                other => format!("users.{other}"),
            };
            assert_eq!(table.cost(m), emu.cost(&path), "{table} {path}");
        }
        assert_eq!(table.user_units_per_minute(), emu.user_units_per_minute());
        assert_eq!(
            table.project_units_per_minute(),
            emu.project_units_per_minute()
        );
        assert_eq!(table.project_daily_units(), emu.project_daily_units());
    }
    assert_eq!(
        emulator_table(QuotaTable::default()),
        EmulatorTable::default()
    );
}
