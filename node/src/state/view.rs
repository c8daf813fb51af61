//! JSON views of the economy for the HTTP API and the CLI.

use serde_json::{Value, json};

use super::{Key, State};

/// A coldkey's balance, nonce and stakes.
pub fn account(state: &State, coldkey: &Key) -> Value {
    let account = state.account(coldkey);
    let stakes: Vec<Value> = state
        .stakes
        .iter()
        .flat_map(|(subnet, hotkeys)| {
            hotkeys.iter().filter_map(move |(hotkey, coldkeys)| {
                coldkeys.get(coldkey).map(
                    |amount| json!({"subnet": subnet, "hotkey": hotkey.to_hex(), "amount": amount}),
                )
            })
        })
        .collect();
    json!({
        "coldkey": coldkey.to_hex(),
        "balance": account.balance,
        "nonce": account.nonce,
        "stakes": stakes,
        "epoch": state.epoch,
    })
}

/// A subnet's chain metagraph: registration price, owner and every neuron with stake and results.
pub fn subnet(state: &State, id: u32) -> Option<Value> {
    let subnet = state.subnets.get(&id)?;
    let neurons: Vec<Value> = subnet
        .neurons
        .iter()
        .enumerate()
        .map(|(uid, n)| {
            json!({
                "uid": uid,
                "hotkey": n.hotkey.to_hex(),
                "owner": n.owner.to_hex(),
                "stake": state.hotkey_stake(id, &n.hotkey),
                "registered_at": n.registered_at,
                "last_update": n.last_update,
                "consensus": n.results[0],
                "incentive": n.results[1],
                "dividends": n.results[2],
                "validator_trust": n.results[3],
                "emission": n.last_emission,
                "bonds": n.bonds,
            })
        })
        .collect();
    Some(json!({
        "name": subnet.name,
        "tasks": subnet.tasks,
        "owner": subnet.owner.map(|o| o.to_hex()),
        "burn": subnet.burn,
        "locked": subnet.locked,
        "neurons": neurons,
    }))
}

/// Supply, parameters and subnets at a glance.
pub fn summary(state: &State) -> Value {
    json!({
        "epoch": state.epoch,
        "supply": {
            "genesis": state.supply.genesis,
            "emitted": state.supply.emitted,
            "burned": state.supply.burned,
            "total": u128::from(state.supply.genesis) + u128::from(state.supply.emitted)
                - u128::from(state.supply.burned),
        },
        "params": state.params,
        "subnets": state.subnets.keys().collect::<Vec<_>>(),
        "accounts": state.accounts.len(),
        "root": hex::encode(state.root()),
    })
}
