//! Transfer learning: start from other weights, re-initialise the head,
//! freeze a backbone, train it at a scaled rate.
//!
//! The lecture's two-stage recipe is two runs: train the new head on
//! frozen features (`init`, `replace_head`, `freeze: [everything but the
//! head]`), then fine-tune everything from that run's checkpoint at a lower
//! rate (`init: RUN/checkpoint.safetensors`, `backbone_lr_scale: 0.1`).

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::Error;
use crate::model::Model;

/// Applies the config's transfer settings to a freshly built model: loads
/// `init` (unless `resuming`: the checkpoint has the weights), then freezes
/// and scales. Returns lines to tell the user what happened.
pub fn prepare(
    model: &mut Model,
    config: &TrainConfig,
    resuming: bool,
) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let head = model.head_tensors();
    if let (Some(path), false) = (&config.init, resuming) {
        let c = checkpoint::load(std::path::Path::new(path))?;
        let skip: Vec<String> = if config.replace_head {
            head.clone()
        } else {
            Vec::new()
        };
        let unused = model.load_weights_except(&c.tensors, &skip).map_err(|e| {
            let hint = if config.replace_head {
                ""
            } else {
                " (for a new number of classes, add replace_head: true / --replace-head)"
            };
            Error::checkpoint(&c.path, format!("{e}{hint}"))
        })?;
        let loaded = model.tensors.len() - skip.len();
        notes.push(format!(
            "initialised {loaded} tensors from {}{}",
            c.path.display(),
            if config.replace_head {
                format!("; the head ({}) starts fresh", head.join(", "))
            } else {
                String::new()
            }
        ));
        let stray: Vec<&String> = unused.iter().filter(|k| !k.starts_with("optim.")).collect();
        if !stray.is_empty() {
            notes.push(format!(
                "{} tensor(s) of the file unused, first `{}`",
                stray.len(),
                stray[0]
            ));
        }
    }
    if !config.freeze.is_empty() {
        let counts = model.freeze(&config.freeze);
        for (p, n) in config.freeze.iter().zip(&counts) {
            if *n == 0 {
                return Err(Error::Transfer(format!(
                    "freeze: no op is named `{p}` or `{p}.*` (`cnncost weights NET` lists the names)"
                )));
            }
        }
        let frozen = model.params().filter(|t| t.frozen).count();
        let total = model.params().count();
        if frozen == total {
            return Err(Error::Transfer(
                "freeze: every parameter would be frozen; nothing would train".to_string(),
            ));
        }
        notes.push(format!(
            "frozen: {frozen} of {total} parameter tensors ({})",
            config.freeze.join(", ")
        ));
    }
    if config.backbone_lr_scale != 1.0 {
        for t in model.tensors.iter_mut() {
            if !head.contains(&t.name) {
                t.lr_scale = config.backbone_lr_scale;
            }
        }
        notes.push(format!(
            "backbone at {}x the head's learning rate",
            config.backbone_lr_scale
        ));
    }
    Ok(notes)
}
