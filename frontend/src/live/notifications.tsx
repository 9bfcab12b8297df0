// Personal notifications over the WebSocket: a ticket from
// POST /ws-ticket opens it, a closed socket is reopened with a fresh ticket
// after a pause, and every message is shown as a toast and handed to
// whoever listens (the auction room updates its budget bar from them).
// Whether it is open is told too: the header's menu reads the stored
// notices again when it (re)opens, as one sent meanwhile reached no one.
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';

import { wsTicket } from '../api/endpoints';
import type { Notification } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { useToast } from '../components/useToast';
import { backoff, describe, knownCurrency } from './notify';
import { NotificationContext, type NotificationListener } from './useNotifications';

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const toast = useToast();
  const listeners = useRef(new Set<NotificationListener>());
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    if (status !== 'authenticated') return;
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let stopped = false;

    const connect = async () => {
      try {
        const { ticket } = await wsTicket();
        if (stopped) return;
        const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
        socket = new WebSocket(`${scheme}://${window.location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
        socket.onopen = () => {
          attempt = 0;
          if (!stopped) setConnected(true);
        };
        socket.onmessage = (message) => {
          try {
            const notification = JSON.parse(String(message.data)) as Notification;
            const kind = notification.type === 'won' || notification.type === 'auto_raised' ? 'good' : 'info';
            // The message names its item only: its amounts are worded in the
            // item's currency if this page has seen it (usd otherwise).
            toast(describe(notification, knownCurrency(notification.data.item_id)), kind);
            listeners.current.forEach((listener) => listener(notification));
          } catch {
            // Not a notification: ignore it.
          }
        };
        socket.onclose = () => {
          // A socket this effect closed itself says nothing of the next one.
          if (stopped) return;
          setConnected(false);
          timer = setTimeout(() => void connect(), backoff(attempt++));
        };
      } catch {
        if (!stopped) timer = setTimeout(() => void connect(), backoff(attempt++));
      }
    };
    void connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
      setConnected(false);
    };
  }, [status, toast]);

  const subscribe = useCallback((listener: NotificationListener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);
  const channel = useMemo(() => ({ subscribe, connected }), [subscribe, connected]);
  return <NotificationContext.Provider value={channel}>{children}</NotificationContext.Provider>;
}

