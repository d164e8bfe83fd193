//! Whether one component can take the place of another behind a running
//! endpoint: everything its callers may call must still be there, with the
//! same types. The check a connecting caller's handshake makes, made for
//! every gateway at once.

use super::info::ComponentInfo;

impl ComponentInfo {
    /// Whether `new` can replace this component behind a running endpoint:
    /// it exports every gateway this one does, with every function under
    /// the same id, as an ask or a tell alike, with the same parameter and
    /// result types. It may export more (gateways or functions), and a
    /// function may turn async or sync: callers see no difference.
    ///
    /// # Errors
    ///
    /// Every difference, one per line, each naming the gateway and function.
    pub fn can_be_replaced_by(&self, new: &ComponentInfo) -> Result<(), String> {
        let mut differences = Vec::new();
        for gateway in &self.gateways {
            if new.gateway(&gateway.name).is_none() {
                differences.push(format!("`{}` is not exported", gateway.name));
                continue;
            }
            for old in &self.functions[gateway.functions.clone()] {
                let name = format!("`{}.{}`", gateway.name, old.signature.name);
                let Some(found) = new.function(old.id) else {
                    differences.push(format!("{name} is not exported"));
                    continue;
                };
                let (old, found) = (&old.signature, &found.signature);
                if old.params.len() != found.params.len() {
                    let counts = (old.params.len(), found.params.len());
                    differences.push(format!("{name} took {} parameter(s), now {}", counts.0, counts.1));
                    continue;
                }
                for ((param, expected), (_, now)) in old.params.iter().zip(&found.params) {
                    if let Some(difference) = expected.difference(now) {
                        differences.push(format!("{name} parameter `{param}`: {difference}"));
                    }
                }
                match (&old.result, &found.result) {
                    (Some(expected), Some(now)) => {
                        if let Some(difference) = expected.difference(now) {
                            differences.push(format!("{name} result: {difference}"));
                        }
                    }
                    (None, None) => {}
                    (Some(_), None) => differences.push(format!("{name} was an ask, now a tell")),
                    (None, Some(_)) => differences.push(format!("{name} was a tell, now an ask")),
                }
            }
        }
        if differences.is_empty() { Ok(()) } else { Err(differences.join("\n")) }
    }
}
