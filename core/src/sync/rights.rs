//! [`Rights`]: what a remote key may do on this node (DESIGN §11). Which key gets which rights
//! is the node's policy (`peer::rights`); a session only enforces the rights it was given.

use std::fmt;

/// The rights of one remote key on this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights {
    /// It may subscribe to and receive this node's CDVCSs.
    pub read: bool,
    /// This node stores (and relays) the commits it sends.
    pub write: bool,
}

impl Rights {
    /// No right.
    pub const NONE: Rights = Rights {
        read: false,
        write: false,
    };
    /// Read only.
    pub const READ: Rights = Rights {
        read: true,
        write: false,
    };
    /// Write only.
    pub const WRITE: Rights = Rights {
        read: false,
        write: true,
    };
    /// Read and write.
    pub const ALL: Rights = Rights {
        read: true,
        write: true,
    };

    /// Both sets of rights.
    pub fn union(self, other: Rights) -> Rights {
        Rights {
            read: self.read || other.read,
            write: self.write || other.write,
        }
    }

    /// Whether no right is given.
    pub fn is_none(self) -> bool {
        !self.read && !self.write
    }
}

impl fmt::Display for Rights {
    /// `read`, `write`, `read,write` or `none`: the allow file's spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.read, self.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "none",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_combine_and_print_as_the_allow_file_spells_them() {
        assert_eq!(Rights::READ.union(Rights::WRITE), Rights::ALL);
        assert_eq!(Rights::NONE.union(Rights::READ), Rights::READ);
        assert!(Rights::NONE.is_none() && !Rights::WRITE.is_none());
        let printed: Vec<String> = [Rights::ALL, Rights::READ, Rights::WRITE, Rights::NONE]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(printed, ["read,write", "read", "write", "none"]);
    }
}
