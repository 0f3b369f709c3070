//! The control requests as one value: what `ReloadConfig`, `ExitAgent`, `Reboot` and `Shutdown`
//! ask of the agent, apart from the message that carries it.

use crate::message::{ActionId, ActionRef, Message};

/// A control request: each is a message of its own whose body only names the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `ReloadConfig`: read the configuration again.
    Reload,
    /// `ExitAgent`: exit, to be restarted by the service manager.
    Exit,
    /// `Reboot`: reboot the device.
    Reboot,
    /// `Shutdown`: shut the device down.
    Shutdown,
}

impl Control {
    /// Every control request.
    pub const ALL: [Control; 4] = [
        Control::Reload,
        Control::Exit,
        Control::Reboot,
        Control::Shutdown,
    ];

    /// The message asking for this control as `action`.
    pub fn message(self, action: ActionId) -> Message<'static> {
        let r = ActionRef { action };
        match self {
            Control::Reload => Message::ReloadConfig(r),
            Control::Exit => Message::ExitAgent(r),
            Control::Reboot => Message::Reboot(r),
            Control::Shutdown => Message::Shutdown(r),
        }
    }

    /// The control `message` asks for and its action; `None` if it is no control request.
    pub fn of(message: &Message<'_>) -> Option<(Control, ActionId)> {
        Some(match message {
            Message::ReloadConfig(r) => (Control::Reload, r.action),
            Message::ExitAgent(r) => (Control::Exit, r.action),
            Message::Reboot(r) => (Control::Reboot, r.action),
            Message::Shutdown(r) => (Control::Shutdown, r.action),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::HeartbeatRequest;

    #[test]
    fn each_control_is_its_own_message_and_back() {
        let mut types = [None; 4];
        for (slot, control) in types.iter_mut().zip(Control::ALL) {
            let message = control.message(7);
            assert_eq!(Control::of(&message), Some((control, 7)));
            *slot = Some(message.message_type());
        }
        for (i, a) in types.iter().enumerate() {
            for b in types.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        let heartbeat = Message::HeartbeatRequest(HeartbeatRequest {
            server_version: "x",
            nonce: 1,
        });
        assert_eq!(Control::of(&heartbeat), None);
        assert_eq!(
            Control::of(&Message::Keepalive(ActionRef { action: 7 })),
            None
        );
    }
}
