Feature: Push registration on every start, once per device token, for the identity on the device
  The app registers the device for push on every start, so a registration is never missing, but
  keeps the device token it registered and writes nothing when the token and the identity are
  the ones it registered before. When the OS hands it a new device token, it registers that one
  and removes the old. Relaunched as another identity, it removes the previous identity's
  registration of the device first: otherwise the new user gets the old user's pushes. The
  backend expires a registration after a year without activity (a registration write, or the
  identity's event channel connecting); that advice is shown, not judged.

  Background:
    Given the backend has the "basic" fixture

  @PUSH-1 @PUSH-2
  Scenario: A restart with the same device token does not register again
    Given the device's push token is "fcm-device-1"
    And alice's client has started and synchronized
    When alice's app is killed
    And alice's client starts
    And 10 seconds pass
    Then every start left a push registration
    And the unchanged push token was not registered again

  @PUSH-1 @PUSH-3
  Scenario: A new device token from the OS replaces the registration
    Given the device's push token is "fcm-device-1"
    And alice's client has started and synchronized
    When the OS hands the app the new push token "fcm-device-2"
    And 10 seconds pass
    Then the push registration follows the new token
    And every start left a push registration

  @PUSH-1 @PUSH-4
  Scenario: Relaunched as another identity, the app removes the previous identity's registration
    Given the device's push token is "fcm-device-1"
    And alice's client has started and synchronized
    When alice's app is killed
    And bob's client starts
    And 10 seconds pass
    Then the previous identity's push registration is gone
    And every start left a push registration
