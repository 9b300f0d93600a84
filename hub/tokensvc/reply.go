package tokensvc

import (
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pullgate/pullgate/pkg/wire"
)

// enrolInboxRE is the inbox hub/natsauth lets an enrolling connection
// subscribe to: _INBOX_enrol_<enrol id>.<anything>.
var enrolInboxRE = regexp.MustCompile(`^_INBOX_enrol_[a-f0-9]{16,64}\.[^\s]+$`)

// replyAllowed reports whether the hub may answer a request on subject at
// reply: only at the requester's own inbox. The NATS server lets a node
// name any reply subject, and the hub's answer would otherwise land where
// the node itself may not publish (another cluster's revocations).
func replyAllowed(subject, reply string) bool {
	if _, err := wire.ParseEnrolSubject(subject); err == nil {
		return enrolInboxRE.MatchString(reply)
	}
	if _, nodeID, err := wire.ParseNodeSubject(subject); err == nil {
		own := wire.InboxPrefix(nodeID) + "."
		return strings.HasPrefix(reply, own) && len(reply) > len(own)
	}
	return false
}

// ownInboxOnly drops requests whose reply subject is not the requester's
// own inbox, before anything is done for them. The reply subject is not
// logged: it is the requester's text.
func (s *Service) ownInboxOnly(h nats.MsgHandler) nats.MsgHandler {
	return func(m *nats.Msg) {
		if !replyAllowed(m.Subject, m.Reply) {
			s.log.Warn("dropped a request whose reply subject is not the requester's own inbox", "subject", m.Subject)
			return
		}
		h(m)
	}
}
