Feature: A year of daily app starts keeps the device's push registration
  Registrations expire after a year without activity; deregistering once a day is the advice
  for apps that cannot tell when they are uninstalled. Both are guidance, not a contract a
  client can be checked against (PUSH-5 is reported, not judged), but the backend models the
  expiry, and a year of daily starts shows it: the device that starts every day keeps its
  registration (every start is still judged by PUSH-1), and a device registered once and never
  seen again loses its registration after 365 days. The app has no conversations here, so each
  virtual day costs what a start, a kill and a day's step cost, nothing more.

  @PUSH-5
  Scenario: A year of daily starts keeps the registration; a device idle for a year expires
    Given the device's push token is "fcm-device-1"
    And carol registered the device "apn-carol-1" for push
    When alice's app starts daily for 366 days
    Then carol's idle push binding has expired
    And every start left a push registration
