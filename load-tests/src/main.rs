//! Load generator for the dispatch service. The HTTP service does not exist yet (see the
//! issue "The service"), so this binary only says so; it exists to hold the workspace's shape.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the load harness arrives with the HTTP service; nothing to drive yet")
}
