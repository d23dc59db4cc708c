//! THREAD=REFERENCES (RFC 5256 §4.2): threads from Message-ID, References and In-Reply-To,
//! with missing parents as placeholders, loops refused, and top-level threads of the same base
//! subject merged.

use std::collections::HashMap;
use std::num::NonZeroU32;

use imap_codec::imap_types::extensions::thread::Thread;

use super::sort::{thread_of, Keys};

/// A container of the algorithm: a message, or a placeholder for a message only referenced.
#[derive(Default)]
struct Node {
    /// Index into the keys, `None` for a placeholder ("dummy").
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest<'a> {
    nodes: Vec<Node>,
    keys: &'a [Keys],
}

impl Forest<'_> {
    fn new_node(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, mut b: usize) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.nodes[b].parent {
                Some(p) => b = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    /// Makes `child` a child of `parent` unless that would make a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if self.is_ancestor(child, parent) {
            return;
        }
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// A node's sent date: its message's, or for a placeholder its first child's (children are
    /// sorted first).
    fn date(&self, n: usize) -> (i64, usize) {
        match self.nodes[n].msg {
            Some(m) => (self.keys[m].date, self.keys[m].index),
            None => self.nodes[n]
                .children
                .first()
                .map_or((i64::MAX, usize::MAX), |&c| self.date(c)),
        }
    }

    /// The message whose subject stands for a node (its own, or a placeholder's first child's).
    fn subject_of(&self, n: usize) -> Option<&Keys> {
        match self.nodes[n].msg {
            Some(m) => Some(&self.keys[m]),
            None => self.nodes[n]
                .children
                .first()
                .and_then(|&c| self.nodes[c].msg.map(|m| &self.keys[m])),
        }
    }

    /// Step 4: placeholders without children go, those with children are replaced by them
    /// (at the top level only when there is a single child). Returns the new list of `list`.
    fn prune(&mut self, list: Vec<usize>, top: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for n in list {
            let children = std::mem::take(&mut self.nodes[n].children);
            let children = self.prune(children, false);
            if self.nodes[n].msg.is_none() && (!top || children.len() <= 1) {
                out.extend(children);
            } else {
                self.nodes[n].children = children;
                out.push(n);
            }
        }
        out
    }

    /// Step 7 (and 5): siblings by sent date, depth first.
    fn sort(&mut self, list: &mut [usize]) {
        for &n in list.iter() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            self.sort(&mut children);
            self.nodes[n].children = children;
        }
        list.sort_by_key(|&n| self.date(n));
    }

    fn to_thread(&self, n: usize, number: &impl Fn(&Keys) -> Option<NonZeroU32>) -> Option<Thread> {
        let children = self.nodes[n]
            .children
            .iter()
            .filter_map(|&c| self.to_thread(c, number))
            .collect();
        thread_of(
            self.nodes[n].msg.and_then(|m| number(&self.keys[m])),
            children,
        )
    }
}

/// The REFERENCES threads of `keys` (the messages a search matched).
pub(crate) fn references(
    keys: &[Keys],
    number: impl Fn(&Keys) -> Option<NonZeroU32>,
) -> Vec<Thread> {
    let mut f = Forest {
        nodes: Vec::new(),
        keys,
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // Step 1A: a container per message; a missing or repeated Message-ID gets its own.
    let mut own = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let node = match k.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if f.nodes[n].msg.is_none() => {
                    f.nodes[n].msg = Some(i);
                    n
                }
                Some(_) => f.new_node(Some(i)),
                None => {
                    let n = f.new_node(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => f.new_node(Some(i)),
        };
        own.push(node);
    }
    for (i, k) in keys.iter().enumerate() {
        // Step 1B: the references in order, each the parent of the next, unless already linked.
        let mut previous: Option<usize> = None;
        for id in &k.references {
            let node = match by_id.get(id.as_str()) {
                Some(&n) => n,
                None => {
                    let n = f.new_node(None);
                    by_id.insert(id, n);
                    n
                }
            };
            if let Some(p) = previous {
                if f.nodes[node].parent.is_none() {
                    f.link(p, node);
                }
            }
            previous = Some(node);
        }
        // Step 1C: the last reference is the message's parent, replacing any earlier one.
        let me = own[i];
        f.unlink(me);
        if let Some(p) = previous {
            f.link(p, me);
        }
    }
    // Steps 2-4: the root set, pruned.
    let roots: Vec<usize> = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    let mut roots = f.prune(roots, true);
    for &r in &roots {
        f.nodes[r].parent = None;
    }
    f.sort(&mut roots);
    // Step 6: top-level threads with the same base subject come together.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let Some(k) = f.subject_of(r) else { continue };
        if k.subject.is_empty() {
            continue;
        }
        match table.get(&k.subject) {
            None => {
                table.insert(k.subject.clone(), r);
            }
            Some(&old) => {
                let old_dummy = f.nodes[old].msg.is_none();
                let old_reply = f.subject_of(old).is_some_and(|o| o.reply);
                let dummy = f.nodes[r].msg.is_none();
                if (dummy && !old_dummy) || (old_reply && !k.reply && !dummy) {
                    table.insert(k.subject.clone(), r);
                }
            }
        }
    }
    let mut merged = Vec::new();
    for r in roots {
        if f.nodes[r].parent.is_some() {
            // Already put under another top-level thread.
            continue;
        }
        let target = f
            .subject_of(r)
            .filter(|k| !k.subject.is_empty())
            .and_then(|k| table.get(&k.subject).copied());
        let target = match target {
            Some(t) if t != r => t,
            _ => {
                merged.push(r);
                continue;
            }
        };
        let (r_dummy, t_dummy) = (f.nodes[r].msg.is_none(), f.nodes[target].msg.is_none());
        let r_reply = f.subject_of(r).is_some_and(|k| k.reply);
        let t_reply = f.subject_of(target).is_some_and(|k| k.reply);
        if r_dummy && t_dummy {
            for c in std::mem::take(&mut f.nodes[r].children) {
                f.nodes[c].parent = None;
                f.link(target, c);
            }
        } else if t_dummy || (r_reply && !t_reply) {
            f.link(target, r);
        } else if r_dummy {
            f.link(r, target);
            replace(&mut merged, &mut table, target, r);
        } else {
            let dummy = f.new_node(None);
            f.link(dummy, target);
            f.link(dummy, r);
            replace(&mut merged, &mut table, target, dummy);
        }
    }
    f.sort(&mut merged);
    merged
        .into_iter()
        .filter_map(|r| f.to_thread(r, &number))
        .collect()
}

/// Puts `new` where `old` stood among the top-level nodes (or after them, if `old` is not
/// there yet) and in the subject table.
fn replace(roots: &mut Vec<usize>, table: &mut HashMap<String, usize>, old: usize, new: usize) {
    match roots.iter_mut().find(|r| **r == old) {
        Some(r) => *r = new,
        None => roots.push(new),
    }
    for v in table.values_mut().filter(|v| **v == old) {
        *v = new;
    }
}
