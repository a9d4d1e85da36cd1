//! VM configurations on the storage every host of the pool sees (a VMX file on a shared
//! datastore): written where a VM is created, read by any host that registers it for an
//! HA restart. Both hypervisors, QEMU and simulated, keep them the same way.

use std::path::{Path, PathBuf};

use plinth_proto::{VmName, VmSpec};

use crate::error::AgentError;

/// Where `vm`'s configuration lives on the shared storage `storage`.
pub(crate) fn spec_path(storage: &Path, vm: &VmName) -> PathBuf {
    storage.join("vms").join(format!("{vm}.json"))
}

/// `spec` as stored.
pub(crate) fn encode(spec: &VmSpec, path: &Path) -> Result<Vec<u8>, AgentError> {
    serde_json::to_vec_pretty(spec).map_err(|e| AgentError::File {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })
}

/// Stores `spec` on the shared storage.
pub(crate) async fn write(storage: &Path, spec: &VmSpec) -> Result<(), AgentError> {
    let path = spec_path(storage, &spec.name);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(AgentError::file(dir))?;
    }
    tokio::fs::write(&path, encode(spec, &path)?)
        .await
        .map_err(AgentError::file(&path))
}

/// `vm`'s configuration from the shared storage, and its text; unknown when there is none.
pub(crate) async fn read(storage: &Path, vm: &VmName) -> Result<(VmSpec, Vec<u8>), AgentError> {
    if !vm.is_valid() {
        return Err(AgentError::InvalidName(vm.clone()));
    }
    let path = spec_path(storage, vm);
    let text = tokio::fs::read(&path)
        .await
        .map_err(|_| AgentError::UnknownVm(vm.clone()))?;
    let spec: VmSpec = serde_json::from_slice(&text).map_err(|e| AgentError::File {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    if spec.name != *vm {
        return Err(AgentError::UnknownVm(vm.clone()));
    }
    Ok((spec, text))
}

/// Whether the shared storage holds `spec` as it is: the VM was made on some host of the
/// pool, and another host registers it rather than making it again.
pub(crate) async fn holds(storage: &Path, spec: &VmSpec) -> bool {
    read(storage, &spec.name)
        .await
        .is_ok_and(|(stored, _)| stored == *spec)
}

/// Removes `vm`'s configuration (a deleted VM).
pub(crate) async fn remove(storage: &Path, vm: &VmName) {
    let _ = tokio::fs::remove_file(spec_path(storage, vm)).await;
}
