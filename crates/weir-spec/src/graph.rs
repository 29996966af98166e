//! Step ordering: a stable topological sort and cycle finding.
//!
//! Nodes are step indices in declaration order; `deps[i]` lists the steps
//! step `i` waits for. Both algorithms are iterative so a pipeline of
//! thousands of chained steps cannot overflow the stack.

use std::collections::{BTreeSet, VecDeque};

/// Steps in an order where each comes after its dependencies; among steps
/// that are ready at the same time, the one declared first goes first.
/// On a cycle, returns every cycle found (one per strongly connected
/// component), each as a path `[a, b, ..., a]` with `a` the earliest declared.
pub(crate) fn topological_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let n = deps.len();
    let mut waiting: Vec<usize> = vec![0; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        let unique: BTreeSet<usize> = ds.iter().copied().filter(|d| *d < n).collect();
        waiting[i] = unique.len();
        for d in unique {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() == n {
        Ok(order)
    } else {
        Err(cycles(deps))
    }
}

/// One cycle per strongly connected component that has one.
fn cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for component in strongly_connected(deps) {
        let start = component.iter().copied().min().unwrap_or(0);
        let self_loop = deps[start].contains(&start);
        if component.len() == 1 && !self_loop {
            continue;
        }
        if self_loop {
            out.push(vec![start, start]);
            continue;
        }
        if let Some(path) = shortest_cycle(deps, &component, start) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Breadth-first from `start` back to `start` inside `component`.
fn shortest_cycle(
    deps: &[Vec<usize>],
    component: &BTreeSet<usize>,
    start: usize,
) -> Option<Vec<usize>> {
    let mut prev: Vec<Option<usize>> = vec![None; deps.len()];
    let mut queue = VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    while let Some(i) = queue.pop_front() {
        let mut next: Vec<usize> = deps[i]
            .iter()
            .copied()
            .filter(|d| component.contains(d))
            .collect();
        next.sort_unstable();
        for d in next {
            if d == start {
                let mut path = vec![start];
                let mut at = i;
                while at != start {
                    path.push(at);
                    at = prev[at]?;
                }
                path.push(start);
                // Collected backwards from `i`; the path reads start → ... → i → start.
                let inner: Vec<usize> = path[1..path.len() - 1].iter().rev().copied().collect();
                let mut cycle = vec![start];
                cycle.extend(inner);
                cycle.push(start);
                return Some(cycle);
            }
            if seen.insert(d) {
                prev[d] = Some(i);
                queue.push_back(d);
            }
        }
    }
    None
}

/// Tarjan's algorithm, iteratively.
fn strongly_connected(deps: &[Vec<usize>]) -> Vec<BTreeSet<usize>> {
    let n = deps.len();
    let mut index: Vec<Option<usize>> = vec![None; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root].is_some() {
            continue;
        }
        // (node, position in its dependency list)
        let mut work = vec![(root, 0usize)];
        index[root] = Some(next_index);
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(&w) = deps[v].get(*pos) {
                *pos += 1;
                if w >= n {
                    continue;
                }
                match index[w] {
                    None => {
                        index[w] = Some(next_index);
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, 0));
                    }
                    Some(iw) if on_stack[w] => low[v] = low[v].min(iw),
                    Some(_) => {}
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if Some(low[v]) == index[v] {
                    let mut component = BTreeSet::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.insert(w);
                        if w == v {
                            break;
                        }
                    }
                    components.push(component);
                }
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_stable_by_declaration() {
        // 0 needs 2; 1 free; 2 free; 3 needs 0 and 1.
        let deps = vec![vec![2], vec![], vec![], vec![0, 1]];
        assert_eq!(topological_order(&deps), Ok(vec![1, 2, 0, 3]));
        assert_eq!(
            topological_order(&[vec![], vec![], vec![]]),
            Ok(vec![0, 1, 2])
        );
    }

    #[test]
    fn finds_each_cycle_with_its_path() {
        // 0 → 1 → 2 → 0, 3 → 3, 4 needs 0 (not in a cycle).
        let deps = vec![vec![1], vec![2], vec![0], vec![3], vec![0]];
        assert_eq!(
            topological_order(&deps),
            Err(vec![vec![0, 1, 2, 0], vec![3, 3]])
        );
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let n = 100_000;
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert_eq!(topological_order(&deps).map(|o| o.len()), Ok(n));
        let mut cyclic = deps;
        cyclic[0] = vec![n - 1];
        let cycles = topological_order(&cyclic).expect_err("cycle");
        assert_eq!(cycles[0].len(), n + 1);
    }
}
