//! User onboarding: creating a user must give them their onboarding tasks, yet a user and a
//! task are two aggregates, so two transactions.
//!
//! [`User`] records only that the user exists. A subscription to `UserCreated` then creates
//! one [`Task`] per entry of [`ONBOARDING_TASKS`], eventually. The subscription delivers at
//! least once, so the task ids are derived from the user id ([`onboarding_task_id`]) and a
//! task created again with the same data records nothing: a redelivery is harmless.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The tasks every new user is given, in order; the index is part of each task's id.
pub const ONBOARDING_TASKS: [&str; 2] = [
    "Create your GitHub account",
    "Review the project documentation",
];

/// The id of a user's `index`-th onboarding task. Deterministic, so a redelivered
/// `UserCreated` addresses the same tasks instead of creating new ones. It adds no `-`, the
/// separator of stream names, and the index after the last `.` keeps ids of two users apart.
pub fn onboarding_task_id(user_id: &str, index: usize) -> String {
    format!("{user_id}.{index}")
}

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum UserEvent {
    /// The user signed up; the onboarding subscription reacts to it.
    UserCreated {
        /// The user.
        user_id: String,
        /// Where to reach them.
        email: String,
        /// Their name.
        name: String,
    },
}

/// What can be asked of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Create a new user.
    Create {
        /// The user.
        user_id: String,
        /// Their email, which must contain `@`.
        email: String,
        /// Their name.
        name: String,
    },
}

/// Why a user refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A user is created once.
    #[error("user {user_id} already exists")]
    AlreadyCreated {
        /// The user.
        user_id: String,
    },
    /// An address without `@` cannot reach anyone.
    #[error("user {user_id} has an invalid email {email:?}")]
    InvalidEmail {
        /// The user.
        user_id: String,
        /// The refused address.
        email: String,
    },
}

/// A user as their events made them; serializable so that it can be snapshotted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    created: bool,
    email: String,
    name: String,
}

impl User {
    /// Whether the user exists.
    pub fn is_created(&self) -> bool {
        self.created
    }

    /// Their email (empty before creation).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// Their name (empty before creation).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.created {
            return f.write_str("not created");
        }
        write!(f, "{:?} <{}>", self.name, self.email)
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn handle(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Create {
                user_id,
                email,
                name,
            } => {
                if self.created {
                    return Err(UserError::AlreadyCreated { user_id });
                }
                if !email.contains('@') {
                    return Err(UserError::InvalidEmail { user_id, email });
                }
                Ok(vec![UserEvent::UserCreated {
                    user_id,
                    email,
                    name,
                }])
            }
        }
    }

    fn apply(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserCreated { email, name, .. } => {
                self.created = true;
                self.email = email.clone();
                self.name = name.clone();
            }
        }
    }
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum TaskEvent {
    /// A task was given to a user.
    TaskCreated {
        /// The task.
        task_id: String,
        /// The user id of whoever must do it.
        assignee: String,
        /// What to do.
        title: String,
    },
    /// The assignee did the task.
    TaskCompleted {
        /// The task.
        task_id: String,
    },
}

/// What can be asked of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCommand {
    /// Create the task; sent again with the same data, it records nothing.
    Create {
        /// The task.
        task_id: String,
        /// The user id of whoever must do it.
        assignee: String,
        /// What to do.
        title: String,
    },
    /// Mark the task done.
    Complete {
        /// The task.
        task_id: String,
    },
}

/// Why a task refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The id is taken by a task with other data: a redelivery would carry the same.
    #[error("task {task_id} already exists for user {assignee}: {title:?}")]
    AlreadyCreated {
        /// The task.
        task_id: String,
        /// Its recorded assignee.
        assignee: String,
        /// Its recorded title.
        title: String,
    },
    /// Only an existing task can be completed.
    #[error("task {task_id} does not exist")]
    NotCreated {
        /// The task.
        task_id: String,
    },
    /// A task is completed once.
    #[error("task {task_id} is already completed")]
    AlreadyCompleted {
        /// The task.
        task_id: String,
    },
}

/// A task as its events made it; serializable so that it can be snapshotted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    created: bool,
    assignee: String,
    title: String,
    done: bool,
}

impl Task {
    /// Whether the task exists.
    pub fn is_created(&self) -> bool {
        self.created
    }

    /// The user id of whoever must do it (empty before creation).
    pub fn assignee(&self) -> &str {
        &self.assignee
    }

    /// What to do (empty before creation).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Whether the assignee completed it.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.created {
            return f.write_str("not created");
        }
        let status = if self.done { "done" } else { "open" };
        write!(f, "{:?} for {} ({status})", self.title, self.assignee)
    }
}

impl Aggregate for Task {
    const TYPE: &'static str = "Task";
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = TaskError;

    fn handle(&self, command: TaskCommand) -> Result<Vec<TaskEvent>, TaskError> {
        let event = match command {
            TaskCommand::Create {
                task_id,
                assignee,
                title,
            } => {
                if self.created {
                    if assignee == self.assignee && title == self.title {
                        return Ok(vec![]);
                    }
                    return Err(TaskError::AlreadyCreated {
                        task_id,
                        assignee: self.assignee.clone(),
                        title: self.title.clone(),
                    });
                }
                TaskEvent::TaskCreated {
                    task_id,
                    assignee,
                    title,
                }
            }
            TaskCommand::Complete { task_id } => {
                if !self.created {
                    return Err(TaskError::NotCreated { task_id });
                }
                if self.done {
                    return Err(TaskError::AlreadyCompleted { task_id });
                }
                TaskEvent::TaskCompleted { task_id }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &TaskEvent) {
        match event {
            TaskEvent::TaskCreated {
                assignee, title, ..
            } => {
                self.created = true;
                self.assignee = assignee.clone();
                self.title = title.clone();
            }
            TaskEvent::TaskCompleted { .. } => self.done = true,
        }
    }
}
