//! Library lending: books are lent out and returned, and each member keeps the list of
//! books they borrowed.
//!
//! Two aggregates, two consistency boundaries. [`Book`] alone decides who may borrow it;
//! [`Member`] only mirrors those decisions, fed by a subscription to the book events in a
//! transaction of its own. A subscription delivers at least once, so recording a loan the
//! member already has, or ending one they no longer have, changes nothing and is not an error.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// What happened to a book; each variant carries the ids a member's subscription needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum BookEvent {
    /// The book joined the catalogue.
    BookAdded {
        /// The book.
        book_id: String,
        /// Its title, shown to members.
        title: String,
    },
    /// A member took the book home.
    BookLentOut {
        /// The book.
        book_id: String,
        /// Who borrowed it.
        member_id: String,
    },
    /// The member who held the book brought it back.
    BookReturned {
        /// The book.
        book_id: String,
        /// Who returned it.
        member_id: String,
    },
}

/// What can be asked of a book; each accepted command records exactly one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookCommand {
    /// Put a new book in the catalogue.
    AddBook {
        /// The book.
        book_id: String,
        /// Its title.
        title: String,
    },
    /// Lend the book to a member.
    LendOut {
        /// The book.
        book_id: String,
        /// The member borrowing it.
        member_id: String,
    },
    /// Take the book back from the member who holds it.
    Return {
        /// The book.
        book_id: String,
        /// The member returning it.
        member_id: String,
    },
}

/// Why a book refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// A book is added to the catalogue once.
    #[error("book {book_id} is already in the catalogue")]
    AlreadyAdded {
        /// The book.
        book_id: String,
    },
    /// Only a book in the catalogue can be lent or returned.
    #[error("book {book_id} is not in the catalogue")]
    NotAdded {
        /// The book.
        book_id: String,
    },
    /// One copy, one borrower: the member asking must wait for the holder to return it.
    #[error("book {book_id} is already lent to member {holder}")]
    AlreadyLent {
        /// The book.
        book_id: String,
        /// Who holds it now.
        holder: String,
    },
    /// A book on the shelf cannot be returned.
    #[error("book {book_id} is not lent out")]
    NotLent {
        /// The book.
        book_id: String,
    },
    /// Only the holder returns a book, so loans cannot be ended on someone else's behalf.
    #[error("book {book_id} is held by member {holder}, not by member {member_id}")]
    NotTheHolder {
        /// The book.
        book_id: String,
        /// Who tried to return it.
        member_id: String,
        /// Who holds it.
        holder: String,
    },
}

/// A book as its events made it; serializable so that it can be snapshotted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    added: bool,
    title: String,
    holder: Option<String>,
}

impl Book {
    /// Whether the book is in the catalogue, which every other command requires.
    pub fn is_added(&self) -> bool {
        self.added
    }

    /// Its title (empty before it is added).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The member who holds the book, or `None` when it is on the shelf.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }
}

impl fmt::Display for Book {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.added {
            return f.write_str("not added");
        }
        write!(f, "{:?} ", self.title)?;
        match &self.holder {
            Some(holder) => write!(f, "lent to {holder}"),
            None => f.write_str("on the shelf"),
        }
    }
}

impl Aggregate for Book {
    const TYPE: &'static str = "Book";
    type Command = BookCommand;
    type Event = BookEvent;
    type Error = BookError;

    fn handle(&self, command: BookCommand) -> Result<Vec<BookEvent>, BookError> {
        let event = match command {
            BookCommand::AddBook { book_id, title } => {
                if self.added {
                    return Err(BookError::AlreadyAdded { book_id });
                }
                BookEvent::BookAdded { book_id, title }
            }
            BookCommand::LendOut { book_id, member_id } => {
                if !self.added {
                    return Err(BookError::NotAdded { book_id });
                }
                if let Some(holder) = &self.holder {
                    let holder = holder.clone();
                    return Err(BookError::AlreadyLent { book_id, holder });
                }
                BookEvent::BookLentOut { book_id, member_id }
            }
            BookCommand::Return { book_id, member_id } => {
                if !self.added {
                    return Err(BookError::NotAdded { book_id });
                }
                let Some(holder) = &self.holder else {
                    return Err(BookError::NotLent { book_id });
                };
                if *holder != member_id {
                    let holder = holder.clone();
                    return Err(BookError::NotTheHolder {
                        book_id,
                        member_id,
                        holder,
                    });
                }
                BookEvent::BookReturned { book_id, member_id }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &BookEvent) {
        match event {
            BookEvent::BookAdded { title, .. } => {
                self.added = true;
                self.title = title.clone();
            }
            BookEvent::BookLentOut { member_id, .. } => self.holder = Some(member_id.clone()),
            BookEvent::BookReturned { .. } => self.holder = None,
        }
    }
}

/// What happened to a member; loans arrive here after the book decided them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum MemberEvent {
    /// The person joined the library.
    MemberRegistered {
        /// The member.
        member_id: String,
        /// Their name, for the librarian.
        name: String,
    },
    /// A book the member borrowed joined their list.
    LoanRecorded {
        /// The member.
        member_id: String,
        /// The book they borrowed.
        book_id: String,
    },
    /// A book the member returned left their list.
    LoanEnded {
        /// The member.
        member_id: String,
        /// The book they returned.
        book_id: String,
    },
}

/// What can be asked of a member; the loan commands come from the book subscription and
/// may be redelivered, so a repeated one records nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCommand {
    /// Register a new member.
    Register {
        /// The member.
        member_id: String,
        /// Their name.
        name: String,
    },
    /// Add a book to the member's list, because the book was lent to them.
    RecordLoan {
        /// The member.
        member_id: String,
        /// The book they borrowed.
        book_id: String,
    },
    /// Take a book off the member's list, because they returned it.
    EndLoan {
        /// The member.
        member_id: String,
        /// The book they returned.
        book_id: String,
    },
}

/// Why a member refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// A member registers once.
    #[error("member {member_id} is already registered")]
    AlreadyRegistered {
        /// The member.
        member_id: String,
    },
    /// Loans belong to registered members only.
    #[error("member {member_id} is not registered")]
    NotRegistered {
        /// The member.
        member_id: String,
    },
}

/// A member as their events made them; serializable so that it can be snapshotted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    registered: bool,
    name: String,
    borrowed: BTreeSet<String>,
}

impl Member {
    /// Whether the member is registered, which every loan command requires.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Their name (empty before they register).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The books the member holds now, by book id.
    pub fn borrowed(&self) -> &BTreeSet<String> {
        &self.borrowed
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.registered {
            return f.write_str("not registered");
        }
        write!(f, "{:?} borrowed={:?}", self.name, self.borrowed)
    }
}

impl Aggregate for Member {
    const TYPE: &'static str = "Member";
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberError;

    fn handle(&self, command: MemberCommand) -> Result<Vec<MemberEvent>, MemberError> {
        let event = match command {
            MemberCommand::Register { member_id, name } => {
                if self.registered {
                    return Err(MemberError::AlreadyRegistered { member_id });
                }
                MemberEvent::MemberRegistered { member_id, name }
            }
            MemberCommand::RecordLoan { member_id, book_id } => {
                if !self.registered {
                    return Err(MemberError::NotRegistered { member_id });
                }
                if self.borrowed.contains(&book_id) {
                    return Ok(vec![]);
                }
                MemberEvent::LoanRecorded { member_id, book_id }
            }
            MemberCommand::EndLoan { member_id, book_id } => {
                if !self.registered {
                    return Err(MemberError::NotRegistered { member_id });
                }
                if !self.borrowed.contains(&book_id) {
                    return Ok(vec![]);
                }
                MemberEvent::LoanEnded { member_id, book_id }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::MemberRegistered { name, .. } => {
                self.registered = true;
                self.name = name.clone();
            }
            MemberEvent::LoanRecorded { book_id, .. } => {
                self.borrowed.insert(book_id.clone());
            }
            MemberEvent::LoanEnded { book_id, .. } => {
                self.borrowed.remove(book_id);
            }
        }
    }
}
