//! Slots for the connections and forwarded queries in flight, reused as they end, each with a
//! generation that changes on reuse.

pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// Store `value`; its slot and generation.
    pub(crate) fn insert(&mut self, value: T) -> (usize, u32) {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i];
            slot.0 = slot.0.wrapping_add(1) & 0xFF_FFFF;
            slot.1 = Some(value);
            return (i, slot.0);
        }
        self.slots.push((0, Some(value)));
        (self.slots.len() - 1, 0)
    }

    pub(crate) fn get_mut(&mut self, index: usize, gen: u32) -> Option<&mut T> {
        match self.slots.get_mut(index) {
            Some((g, Some(v))) if *g == gen => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, index: usize, gen: u32) -> Option<T> {
        match self.slots.get_mut(index) {
            Some((g, v @ Some(_))) if *g == gen => {
                self.free.push(index);
                self.len -= 1;
                v.take()
            }
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// (slot, generation, value) of every live entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, u32, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, (g, v))| v.as_ref().map(|v| (i, *g, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_has_a_new_generation_and_the_old_one_finds_nothing() {
        let mut s = Slab::default();
        let (i, g) = s.insert("a");
        assert_eq!(s.remove(i, g), Some("a"));
        let (j, h) = s.insert("b");
        assert_eq!(i, j);
        assert_ne!(g, h);
        assert!(s.get_mut(i, g).is_none());
        assert_eq!(s.get_mut(j, h), Some(&mut "b"));
        assert_eq!(s.len(), 1);
        assert_eq!(s.iter().count(), 1);
        assert_eq!(s.remove(i, g), None);
    }
}
