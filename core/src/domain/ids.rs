/// A new prefixed, time-ordered id: `task_0191f...` (UUIDv7, so ids sort by creation time and
/// serve as keyset cursors).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
